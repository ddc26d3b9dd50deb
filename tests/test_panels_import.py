"""The explorer panels are public through tsimcne_nb.widgets and stay lazy (issue 14)."""

from __future__ import annotations

import subprocess
import sys


def test_panels_are_public_and_lazy():
    code = (
        "import sys, tsimcne_nb, tsimcne_nb.widgets as w; "
        "names = ['SelectionExplainer', 'explain_selection', 'ParametricPanel', 'feature_neighbours']; "
        "assert all(n in w.__all__ for n in names), w.__all__; "
        "import tsimcne_nb.widgets.explain, tsimcne_nb.widgets.parametric; "
        "heavy = [m for m in ('torch', 'jscatter', 'scipy', 'matplotlib', 'anywidget') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the panel modules pulled in heavy modules: {out.stdout}"
    from tsimcne_nb.widgets import ParametricPanel, SelectionExplainer

    assert SelectionExplainer.__module__ == "tsimcne_nb.widgets.explain"
    assert ParametricPanel.__module__ == "tsimcne_nb.widgets.parametric"
