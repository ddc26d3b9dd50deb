"""The one thread policy (tsimcne_nb._threads), used by training and by openTSNE."""

from __future__ import annotations

import pytest

from tsimcne_nb import _threads
from tsimcne_nb.errors import ConfigError


def _fake_counters(monkeypatch, samples):
    it = iter(samples)
    monkeypatch.setattr(_threads, "_cpu_counters", lambda: next(it))
    monkeypatch.setattr(_threads.time, "sleep", lambda s: None)


def test_busy_cores_is_the_busy_share_of_the_sample_times_cores(monkeypatch):
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 4)
    # 300 of 400 jiffies busy in the sample -> 3 of 4 cores busy
    _fake_counters(monkeypatch, [(1000, 5000), (1300, 5400)])
    assert _threads.busy_cores() == pytest.approx(3.0)


def test_auto_ignores_an_old_load_average_when_the_cores_are_idle_now(monkeypatch):
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    monkeypatch.setattr(_threads, "available_cores", lambda: 2)
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (2.0, 2.0, 2.0), raising=False)
    _fake_counters(monkeypatch, [(1000, 5000), (1002, 5400)])  # idle now
    assert _threads.choose_num_threads("auto") == 2
    _fake_counters(monkeypatch, [(1000, 5000), (1200, 5400)])  # one core busy now
    assert _threads.choose_num_threads("auto") == 1


def test_load_average_is_the_fallback_without_proc_stat(monkeypatch):
    monkeypatch.setattr(_threads, "_cpu_counters", lambda: None)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (1.4, 0.0, 0.0), raising=False)
    assert _threads.busy_cores() == pytest.approx(1.4)


def test_explicit_and_environment_counts(monkeypatch):
    assert _threads.choose_num_threads(3) == 3
    assert _threads.choose_num_threads("2") == 2
    assert _threads.choose_num_threads(2.0) == 2
    monkeypatch.setenv(_threads.ENV_VAR, "1")
    assert _threads.choose_num_threads("auto") == 1


@pytest.mark.parametrize("bad", [0, -2, "abc", "1.5", True])
def test_bad_counts_are_config_errors_naming_the_value(bad):
    with pytest.raises(ConfigError, match="num_threads must be an integer >= 1"):
        _threads.choose_num_threads(bad)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(_threads.ENV_VAR, "abc")
    with pytest.raises(ConfigError, match="TSIMCNE_NUM_THREADS.*'abc'"):
        _threads.choose_num_threads("auto")


def test_real_proc_stat_sample_is_within_the_machine():
    if _threads._cpu_counters() is None:
        pytest.skip("no /proc/stat on this system (the load-average fallback is tested above)")
    busy = _threads.busy_cores(0.05)
    assert 0.0 <= busy <= (_threads.os.cpu_count() or 1) + 1e-9
