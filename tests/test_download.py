"""The download path against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import socket
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _fakes import cifar_tar_bytes, medmnist_arrays, serve_loopback, write_pcam  # noqa: E402

from tsimcne_nb.data import download
from tsimcne_nb.data.download import download_file, safe_extract_tar  # noqa: E402
from tsimcne_nb.data.loaders import cifar  # noqa: E402
from tsimcne_nb.data.registry import load_dataset  # noqa: E402
from tsimcne_nb.errors import DataError, DownloadError  # noqa: E402

PAYLOAD = bytes(range(256)) * 400  # 100 kB


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours Range unless ``server.ranges`` is False.

    ``server.cut_after`` > 0 makes the next full response stop after that many
    bytes (an interrupted transfer) while announcing the full length.
    """

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        path = self.path.split("?")[0]
        srv.requests.append((path, self.headers.get("Range")))
        if path.startswith("/status/"):
            self.send_error(int(path.rsplit("/", 1)[1]))
            return
        data = srv.files.get(path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cut_after:
            self.wfile.write(body[: srv.cut_after])
            srv.cut_after = 0
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    yield from serve_loopback(_Handler, files={}, requests=[], ranges=True, cut_after=0)


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def test_download_ok(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = download_file(server.base + "/f.bin?download=1", tmp_path / "sub" / "f.bin",
                         md5=_md5(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "sub" / "f.bin.part").exists()
    # present and valid: nothing is fetched again
    n = len(server.requests)
    download_file(server.base + "/f.bin", dest, md5=_md5(PAYLOAD), progress=False)
    assert len(server.requests) == n


def test_download_resumes_with_range(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_after = 30_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="partial file .* is kept and the next try resumes"):
        download_file(server.base + "/f.bin", dest, md5=_md5(PAYLOAD), progress=False)
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == 30_000 and not dest.exists()
    download_file(server.base + "/f.bin", dest, md5=_md5(PAYLOAD), progress=False)
    assert server.requests[-1] == ("/f.bin", "bytes=30000-")
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_download_restarts_when_range_ignored(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.ranges = False
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes from elsewhere")
    dest = download_file(server.base + "/f.bin", tmp_path / "f.bin", md5=_md5(PAYLOAD),
                         progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_download_md5_mismatch(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="has MD5 .* expected 0+.*not installed") as e:
        download_file(server.base + "/f.bin", dest, md5="0" * 32, progress=False)
    assert server.base in str(e.value) and str(tmp_path) in str(e.value)
    assert not dest.exists() and (tmp_path / "f.bin.bad").read_bytes() == PAYLOAD
    # warn-only mode (PCam) installs the file
    with pytest.warns(UserWarning, match="differs from the published"):
        download_file(server.base + "/f.bin", dest, md5="0" * 32, strict_md5=False, progress=False)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("status", [404, 500])
def test_download_http_error(server, tmp_path, status):
    with pytest.raises(DownloadError, match=f"HTTP {status}") as e:
        download_file(f"{server.base}/status/{status}", tmp_path / "x.npz", progress=False)
    msg = str(e.value)
    assert "x.npz" in msg and f"{server.base}/status/{status}" in msg and str(tmp_path) in msg
    assert "by hand" in msg and not (tmp_path / "x.npz").exists()


def test_download_connection_refused(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    url = f"http://127.0.0.1:{port}/bloodmnist.npz"
    with pytest.raises(DownloadError, match="cannot reach .* offline") as e:
        download_file(url, tmp_path / "bloodmnist.npz", timeout=5, progress=False)
    assert url in str(e.value) and str(tmp_path) in str(e.value)


def test_medmnist_download_via_loader(server, tmp_path, monkeypatch):
    import io

    buf = io.BytesIO()
    arrays = medmnist_arrays(size=64)
    np.savez_compressed(buf, **arrays)
    server.files["/bloodmnist_64.npz"] = buf.getvalue()
    monkeypatch.setattr(download, "MEDMNIST_RECORD", server.base + "/{file}?download=1")
    monkeypatch.setitem(download.MEDMNIST_MD5, ("bloodmnist", 64), _md5(buf.getvalue()))
    ds = load_dataset("bloodmnist", root=tmp_path, download=True, size=64)
    assert len(ds) == 13 and (tmp_path / "bloodmnist_64.npz").exists()
    np.testing.assert_array_equal(ds.images[:6], arrays["train_images"])


def test_pcam_download_via_loader(server, tmp_path, monkeypatch):
    src = tmp_path / "src"
    data = write_pcam(src, counts={"test": 3}, gz=True)
    for f in src.glob("*.gz"):
        server.files["/" + f.name] = f.read_bytes()
    monkeypatch.setattr(download, "PCAM_RECORD", server.base + "/{file}?download=1")
    dst = tmp_path / "pcam"
    with pytest.warns(UserWarning, match="MD5 differs"):  # fake files: not the published MD5s
        ds = load_dataset("pcam", root=dst, download=True, split="test")
    np.testing.assert_array_equal(ds.to_numpy(), data["test"][0])
    assert (dst / "camelyonpatch_level_2_split_test_x.h5.gz").exists()


def test_cifar_download_via_loader(server, tmp_path, monkeypatch):
    tar = cifar_tar_bytes(tmp_path)
    server.files["/cifar-10-python.tar.gz"] = tar
    monkeypatch.setattr(cifar, "CIFAR10_URL", server.base + "/cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR10_MD5", _md5(tar))
    ds = load_dataset("cifar10", root=tmp_path / "c", download=True)
    assert len(ds) == 12 and (tmp_path / "c" / "cifar-10-batches-py" / "test_batch").exists()


def test_safe_extract_refuses_escape(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    (tmp_path / "a.tar.gz").write_bytes(buf.getvalue())
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match="unsafe member '../evil.txt'"):
        safe_extract_tar(tmp_path / "a.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    (tmp_path / "b.tar.gz").write_bytes(buf.getvalue()[:20])
    with pytest.raises(DataError, match="damaged"):
        safe_extract_tar(tmp_path / "b.tar.gz", tmp_path / "out")
