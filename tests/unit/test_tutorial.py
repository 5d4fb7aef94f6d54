"""docs/tutorial.ipynb runs top to bottom (nbclient) on its shortened case and shows its results."""

import json

import pytest
from helpers import REPO

pytestmark = [pytest.mark.serial, pytest.mark.viz]

NOTEBOOK = REPO / "docs" / "tutorial.ipynb"


def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat (dev extra)")
    nbclient = pytest.importorskip("nbclient", reason="needs nbclient + ipykernel (dev extra)")
    pytest.importorskip("ipykernel", reason="needs ipykernel (dev extra)")
    pytest.importorskip("trame_pyvista", reason="the notebook's viewer needs tumorpde[viz]")
    out = tmp_path / "tutorial-run"
    monkeypatch.setenv("TUMORPDE_TUTORIAL_OUT", str(out))
    monkeypatch.setenv("PYVISTA_OFF_SCREEN", "true")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    client = nbclient.NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert len(images) == 3  # QoI plot, field figure, interactive view's picture
    assert "times (h): [0.0, 12.0, 24.0, 36.0, 48.0]" in text
    assert "t = 24 h (1 d)  [3/5] - EGF" in text
    assert '<iframe src="http://localhost:' in html
    assert " 200" in text  # the viewer's page answered inside the kernel
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert (out / "qoi.png").stat().st_size > 10_000
    assert (out / "growth.png").stat().st_size > 10_000
