"""ImageNet weights the torchvision way, against a local HTTP server on 127.0.0.1 (never the internet).

The torchvision weights enum's URL is pointed at the loopback server; the file name carries
the SHA-256 prefix that torch.hub checks, exactly as torchvision's published names do
(``resnet18-f37072fd.pth``).  The served file is a *randomly initialised* ResNet18 state
dict standing in for the real ImageNet weights.
"""

from __future__ import annotations

import hashlib
import io
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
from _fakes import serve_loopback

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import DataError, DatasetNotFoundError, DownloadError
from tsimcne_nb.eval import baselines
from tsimcne_nb.eval import compare as cmp
from tsimcne_nb.eval import weights as wfiles

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        self.server.requests.append(self.path)
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    yield from serve_loopback(_Handler, files={}, requests=[])


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub folder (TORCH_HOME), as torchvision users have it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def resnet18_file() -> tuple[bytes, dict]:
    """A seeded random-init ResNet18 state dict, serialised (stand-in for the ImageNet file)."""
    torch.manual_seed(5)
    state = tvm.resnet18(weights=None).state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue(), state


def _serve_as_torchvision(server, monkeypatch, payload: bytes, prefix: str | None = None) -> str:
    """Serve ``payload`` and point torchvision's ResNet18 weights enum at it."""
    prefix = hashlib.sha256(payload).hexdigest()[:8] if prefix is None else prefix
    path = f"/models/resnet18-{prefix}.pth"
    server.files[path] = payload
    monkeypatch.setattr(tvm.ResNet18_Weights.IMAGENET1K_V1.value, "url", server.base + path)
    return f"resnet18-{prefix}.pth"


@pytest.fixture
def small() -> ImageDataset:
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 3
    images = (labels[:, None, None, None] * 70 + rng.integers(0, 40, (12, 8, 8, 3))).astype(np.uint8)
    return ImageDataset(images, labels, class_names=["a", "b", "c"], name="toy", synthetic=True)


KW = {"resize": 40, "crop": 32, "device": "cpu", "batch_size": 8}


def test_download_through_torchvision_checks_the_hash(server, hub, monkeypatch, resnet18_file, small):
    payload, _ = resnet18_file
    name = _serve_as_torchvision(server, monkeypatch, payload)
    assert wfiles.imagenet_weights_file("resnet18") == hub / name
    assert wfiles.published_hash_prefix("resnet18") == name[9:17]
    # offline (no download=True): the clear error, and nothing is requested
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        baselines.imagenet_features(small, weights="imagenet", **KW)
    assert server.requests == []

    feats = baselines.imagenet_features(small, weights="imagenet", download=True, **KW)
    assert server.requests == [f"/models/{name}"]
    assert (hub / name).read_bytes() == payload  # into the torch hub cache, under torchvision's name
    assert hashlib.sha256((hub / name).read_bytes()).hexdigest().startswith(name[9:17])
    assert wfiles.is_published_imagenet_file("resnet18", hub / name)
    # the downloaded weights are really used: they are the seed-5 random init
    ref = baselines.imagenet_features(small, weights=None, random_state=5, **KW)
    np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-5)
    # present now: no second download
    baselines.imagenet_features(small, weights="imagenet", download=True, **KW)
    assert len(server.requests) == 1


def test_wrong_hash_is_refused_and_nothing_is_kept(server, hub, monkeypatch, resnet18_file):
    payload, _ = resnet18_file
    name = _serve_as_torchvision(server, monkeypatch, payload, prefix="deadbeef")
    with pytest.raises(DownloadError) as info:
        wfiles.download_imagenet_weights("resnet18", progress=False)
    msg = str(info.value)
    assert name in msg and "deadbeef" in msg  # the file and the expected hash
    assert hashlib.sha256(payload).hexdigest() in msg  # and what came instead
    assert server.requests == [f"/models/{name}"]
    assert not hub.exists() or list(hub.iterdir()) == []  # no file, no partial file


def test_failed_download_keeps_the_offline_message(server, hub, monkeypatch):
    monkeypatch.setattr(tvm.ResNet18_Weights.IMAGENET1K_V1.value, "url",
                        server.base + "/models/resnet18-0123abcd.pth")  # not served: 404
    with pytest.raises(DatasetNotFoundError) as info:
        wfiles.download_imagenet_weights("resnet18", progress=False)
    msg = str(info.value)
    assert "resnet18-0123abcd.pth" in msg and str(hub) in msg and "404" in msg
    assert "weights=None" in msg


def test_check_weights_file(tmp_path, resnet18_file):
    payload, state = resnet18_file
    good = tmp_path / "good.pth"
    good.write_bytes(payload)
    assert set(wfiles.check_weights_file(good, "resnet18")) == set(state)
    # torchvision's own older files have no num_batches_tracked: accepted
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")},
               tmp_path / "old.pth")
    wfiles.check_weights_file(tmp_path / "old.pth", "resnet18")
    # a {"state_dict": ...} checkpoint is unwrapped
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ckpt.pth")
    wfiles.check_weights_file(tmp_path / "ckpt.pth", "resnet18")

    with pytest.raises(DataError, match=r"not a torchvision resnet152.*use arch='resnet18'"):
        wfiles.check_weights_file(good, "resnet152")
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pth")
    with pytest.raises(DataError, match="module.state_dict"):
        wfiles.check_weights_file(tmp_path / "ddp.pth", "resnet18")
    broken = dict(state)
    broken["fc.weight"] = torch.zeros(10, 512)
    del broken["layer4.1.bn2.weight"]
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(DataError) as info:
        wfiles.check_weights_file(tmp_path / "broken.pth", "resnet18")
    msg = str(info.value)
    assert "broken.pth" in msg and "layer4.1.bn2.weight" in msg and "fc.weight (10, 512)" in msg
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="junk.pth could not be read"):
        wfiles.check_weights_file(tmp_path / "junk.pth", "resnet18")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(DataError, match="not a state dict"):
        wfiles.check_weights_file(tmp_path / "list.pth", "resnet18")


def _fake_features(seen):
    """ResNet features and t-SNE replaced (both are tested elsewhere): only the weights matter here."""
    def fake(dataset, arch, weights, **kw):
        seen.append((arch, weights))
        return np.random.default_rng(0).normal(size=(len(dataset), 8)).astype(np.float32)
    return fake


@pytest.fixture
def cmp_ds(monkeypatch) -> ImageDataset:
    monkeypatch.setattr(baselines, "tsne_of", lambda X, random_state=0, n_jobs=1:
                        np.asarray(X)[:, :2].astype(np.float32))
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    images = (labels[:, None, None, None] * 70 + rng.integers(0, 40, (60, 8, 8, 3))).astype(np.uint8)
    return ImageDataset(images, labels, class_names=["a", "b", "c"], name="toy", synthetic=True)


def test_compare_checks_a_file_before_labelling_it_imagenet(server, hub, monkeypatch, tmp_path,
                                                          resnet18_file, cmp_ds):
    payload, _ = resnet18_file
    seen: list = []
    monkeypatch.setattr(baselines, "imagenet_features", _fake_features(seen))
    run = dict(methods=["tsne-resnet18"], progress=False, n_jobs=1)

    # a file of another architecture in the hub cache: refused before anything runs
    name = _serve_as_torchvision(server, monkeypatch, payload)
    hub.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(1)}, hub / name)
    with pytest.raises(DataError, match=name):
        cmp.compare(cmp_ds, **run)
    assert seen == []
    (hub / name).unlink()

    # a user's file with other weights: checked, run, but not labelled ImageNet
    torch.manual_seed(1)
    own = tmp_path / "my-resnet18.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), own)
    res = cmp.compare(cmp_ds, resnet_weights=own, **run)
    assert res.records[0]["label"] == "t-SNE ResNet18 (weights: my-resnet18.pth)"
    assert any("not torchvision's published ImageNet weights" in n for n in res.notes)
    # the published file itself, wherever the user keeps it: labelled ImageNet
    published = tmp_path / "copy.pth"
    published.write_bytes(payload)
    assert cmp.compare(cmp_ds, resnet_weights=published, **run).records[0]["label"] == \
        "t-SNE ResNet18 (ImageNet)"

    # auto + download: fetched through torchvision, checked, labelled ImageNet
    res = cmp.compare(cmp_ds, download_weights=True, **run)
    assert (hub / name).read_bytes() == payload
    assert res.records[0]["label"] == "t-SNE ResNet18 (ImageNet)" and seen[-1] == ("resnet18", "imagenet")
    assert not any("NOT" in n for n in res.notes)


def test_cli_compare_download_flag_reaches_the_weights(server, hub, monkeypatch, tmp_path,
                                                       resnet18_file, cmp_ds):
    import json

    from tsimcne_nb.cli import main

    payload, _ = resnet18_file
    name = _serve_as_torchvision(server, monkeypatch, payload)
    monkeypatch.setattr(baselines, "imagenet_features", _fake_features([]))
    np.savez(tmp_path / "toy.npz", images=cmp_ds.images, labels=cmp_ds.labels)
    argv = ["compare", "--dataset", f"npz:{tmp_path / 'toy.npz'}", "--methods", "tsne-resnet18",
            "--device", "cpu", "--num-threads", "1", "--no-progress"]
    with pytest.warns(UserWarning, match="NOT the paper's ImageNet baseline"):
        assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert server.requests == [] and not (hub / name).exists()  # no --download: nothing fetched
    assert main([*argv, "--download", "--out", str(tmp_path / "b")]) == 0
    assert (hub / name).read_bytes() == payload
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["config"]["download_weights"] is True
    assert manifest["records"][0]["label"] == "t-SNE ResNet18 (ImageNet)"
