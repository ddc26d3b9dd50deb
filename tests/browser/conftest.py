"""Real-browser fixtures: a private JupyterLab server and headless Chromium (Playwright).

Facts these settings rely on are in shared/reference/BROWSER-TESTING.md: WebGL
through SwiftShader, `window.jupyterapp` exposed for driving the notebook, news
and autosave off, windowing off so every cell's output is attached.

The server runs as its own process group on 127.0.0.1 with fresh config, data,
runtime and settings folders, and is stopped (kernels included) at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(
                        reason="/usr/bin/chromium is missing: apt-get install -y chromium"
                    )
                )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


class LabServer:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir(parents=True)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings = base / "settings"
        _write_json(
            settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        _write_json(
            settings / "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings",
            {"autosave": False},
        )
        # windowing renders only the visible cells; the tests need every output attached
        _write_json(
            settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
            {"windowingMode": "none"},
        )
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(base / "config"),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            IPYTHONDIR=str(base / "ipython"),
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            TSIMCNE_NUM_THREADS="1",
            OMP_NUM_THREADS="1",
        )
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={base / 'workspaces'}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
        self.log_path = base / "jupyterlab.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() can end it and its kernels
        )

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(
            f"JupyterLab did not start in {timeout} s:\n{self.log_path.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        try:
            self.api("/api/shutdown", method="POST")  # shuts kernels down cleanly
            self.proc.wait(timeout=15)
        except Exception:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# not named `browser`: pytest-playwright owns that name and would parametrize the tests
@pytest.fixture(scope="session")
def chromium_browser():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# ----------------------------------------------------------------- notebooks
def write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


KERNEL_EXEC_JS = """
async (code) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = "";
  let err = null;
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === "stream") out += msg.content.text;
    if (t === "error") err = msg.content.ename + ": " + msg.content.evalue;
  };
  await future.done;
  if (err) throw new Error(err);
  return out;
}
"""


class NotebookPage:
    """A notebook opened in JupyterLab with helpers to run code in its kernel."""

    def __init__(self, page, lab: LabServer, name: str) -> None:
        self.page = page
        self.lab = lab
        self.name = name

    def open_and_run_all(self, timeout_ms: int = 120_000) -> None:
        page = self.page
        page.goto(f"{self.lab.url}/lab/tree/{self.name}?reset&token={self.lab.token}")
        page.wait_for_function(
            """() => {
              const app = window.jupyterapp;
              const w = app && app.shell.currentWidget;
              const ctx = w && w.sessionContext;
              return !!(ctx && ctx.session && ctx.session.kernel
                        && ctx.session.kernel.connectionStatus === 'connected'
                        && ctx.session.kernel.status === 'idle');
            }""",
            timeout=timeout_ms,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def run(self, code: str) -> str:
        """Execute ``code`` in the notebook's kernel; return its stdout (raises on error)."""
        return self.page.evaluate(KERNEL_EXEC_JS, code)

    def run_json(self, expr: str):
        return json.loads(self.run(f"import json as _j; print(_j.dumps({expr}))").strip())


def make_page(
    browser, lab: LabServer, notebook_cells: list[str], name: str, timeout_ms: int = 60_000
):
    """Write a notebook of ``notebook_cells``, open it in a new browser context and run it all."""
    write_notebook(lab.root / name, notebook_cells)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    nb = NotebookPage(page, lab, name)
    nb.open_and_run_all()
    return context, nb


# The notebook the browser tests run: three well-separated blobs of 500 points
# (synthetic images), the Explorer, and an AugmentationGallery.
N_PER_CLUSTER = 500
NOTEBOOK_CELLS = [
    f"""\
import numpy as np
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.widgets import AugmentationGallery, Explorer

rng = np.random.default_rng(0)
n_per = {N_PER_CLUSTER}
labels = np.repeat(np.arange(3), n_per)
centers = np.array([[0.0, 0.0], [30.0, 0.0], [15.0, 26.0]])
xy = (rng.normal(size=(3 * n_per, 2)) * 2 + centers[labels]).astype("float32")
try:
    from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
    images = make_synthetic_blood(n=3 * n_per, size=28).images
except ImportError:  # the synthetic generator is optional here: random images do too
    images = rng.integers(0, 256, (3 * n_per, 28, 28, 3), dtype=np.uint8)
ds = ImageDataset(images, labels, ["cluster A", "cluster B", "cluster C"],
                  name="synthetic blobs", synthetic=True)
ex = Explorer(xy, ds, page_size=100, height=420)
ex.scatter.legend(False)  # the tests find clusters by colour: no legend swatches
ex.scatter.lasso(type="rectangle")
ex.scatter.mouse("lasso")
ex.panel.add_class("explorer-main");  # ';': show the map once, in the next cell""",
    "ex",
    "gallery = AugmentationGallery(ds, n_views=8, n_images=2)\ngallery",
    """\
from tsimcne_nb.widgets import LinkedExplorer

# the second map is the first one rotated by 90 degrees
linked = LinkedExplorer([xy, np.c_[-xy[:, 1], xy[:, 0]]], ds, titles=["map A", "map B"], height=300)
for e in linked.explorers:
    e.scatter.legend(False)
    e.scatter.lasso(type="rectangle")
    e.scatter.mouse("lasso")
linked.panel.add_class("explorer-linked")
linked""",
]


@pytest.fixture(scope="session")
def widgets_nb(chromium_browser, lab):
    """The test notebook, opened in JupyterLab with all cells run."""
    context, nb = make_page(chromium_browser, lab, NOTEBOOK_CELLS, "widgets_test.ipynb")
    try:
        yield nb
    finally:
        context.close()
