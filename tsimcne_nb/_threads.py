"""How many CPU threads to use: one policy for torch training and openTSNE.

Torch-free on purpose, so that the t-SNE baselines can use it without importing torch.

Measured on the 2-core development machines: with 2 torch threads, training throughput
collapses (~20x) as soon as another process keeps a core busy, because the two threads wait
on each other at every barrier; one thread then runs far faster.  So ``"auto"`` uses every
core that is idle *now*.  "Now" is a 0.2 s sample of the kernel's CPU counters
(``/proc/stat``), not the 1-minute load average: the load average still remembers a
``pip install`` that ended a minute ago and made a new user's first run take one thread on
an idle machine (issue 16).  The choice is made once, at the start of a run, and kept:
changing the thread count mid-run would change the floating-point summation order, and the
same seed and thread count give a bitwise-identical map.
"""

from __future__ import annotations

import os
import time

from tsimcne_nb.errors import ConfigError

#: how long ``busy_cores`` samples the CPU counters (seconds)
SAMPLE_SECONDS = 0.2

#: environment variable that overrides ``"auto"``
ENV_VAR = "TSIMCNE_NUM_THREADS"


def available_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cpu_counters() -> tuple[int, int] | None:
    """(busy, total) jiffies summed over all CPUs, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    total = sum(values)
    return total - idle, total


def busy_cores(sample_seconds: float = SAMPLE_SECONDS) -> float:
    """How many cores other processes keep busy right now (0.0 .. cores).

    Linux: the share of non-idle time in ``/proc/stat`` over ``sample_seconds``, times the
    machine's core count.  Elsewhere: the 1-minute load average (0 where that is missing).
    """
    first = _cpu_counters()
    if first is not None:
        time.sleep(sample_seconds)
        second = _cpu_counters()
        if second is not None and second[1] > first[1]:
            share = (second[0] - first[0]) / (second[1] - first[1])
            return max(0.0, share) * (os.cpu_count() or 1)
    try:
        return max(0.0, os.getloadavg()[0])
    except (OSError, AttributeError):
        return 0.0


def parse_thread_count(value: object, what: str) -> int:
    """A thread count >= 1 from an int, an integral float or a string of digits; else a
    ConfigError naming ``what`` and the value."""
    try:
        n = int(value) if not isinstance(value, str) else int(value.strip())  # type: ignore[call-overload]
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(value, bool) or (isinstance(value, float) and n != value):
        raise ConfigError(f"{what} must be an integer >= 1 or 'auto'; got {value!r}.")
    return n


def choose_num_threads(requested: int | str | None = "auto") -> int:
    """Threads for torch or openTSNE: ``requested`` if a number, else ``TSIMCNE_NUM_THREADS``,
    else the cores that are idle now (at least 1)."""
    if requested not in (None, "auto"):
        return parse_thread_count(requested, "num_threads")
    env = os.environ.get(ENV_VAR)
    if env and env.strip().lower() != "auto":
        return parse_thread_count(env, f"the environment variable {ENV_VAR}")
    cores = available_cores()
    if cores == 1:
        return 1
    return max(1, cores - int(round(busy_cores())))
