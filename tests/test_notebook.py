"""recognition.ipynb runs top to bottom, headless, against a tiny FER-layout folder."""

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT


@pytest.mark.slow
def test_notebook_executes_on_a_tiny_folder(fer_folder, monkeypatch):
    monkeypatch.setenv("FER2013_DIR", str(fer_folder))
    monkeypatch.setenv("NOTEBOOK_EPOCHS", "1")
    notebook = nbformat.read(ROOT / "recognition.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 6  # bar chart, sample grid, augmentation, curves, confusion matrix, photo
    text = "".join(o.get("text", "") for o in outputs)
    assert "Total params" in text or any("Total params" in str(o.get("data", {})) for o in outputs)
