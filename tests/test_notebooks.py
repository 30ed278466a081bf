"""The example notebooks are acceptance tests: each runs top to bottom in a fresh kernel.

Checked on the outputs: no error, the accuracy printed reaches its target, every plot cell shows
an image, no output is more than a few KB of text, and matplotlib's backend is what it was.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MAX_TEXT = 4096  # characters of text in any one output
# notebook -> (the printed line holding the accuracy, its target)
TARGETS = {
    "01_convolution_and_filters.ipynb": None,
    "02_mnist_train_evaluate_predict.ipynb": (r"test accuracy ([0-9.]+)", 0.98),
    "03_your_own_image_folder.ipynb": (r"validation accuracy ([0-9.]+)", 0.8),
}
PLOT_CALL = re.compile(r"(\.plot_\w+\(|plt\.show\(\))")


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    data = output.get("data", {})  # what Jupyter shows: the HTML when there is one
    return str(data.get("text/html", data.get("text/plain", "")))


def test_every_example_notebook_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.ipynb")) == sorted(TARGETS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_notebook_runs_in_a_fresh_kernel(name, tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    shutil.copy(EXAMPLES / name, tmp_path / name)
    book = nbformat.read(tmp_path / name, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    printed = []
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            assert output.output_type != "error", cell.source
            text = _text(output)
            assert len(text) <= MAX_TEXT, f"{len(text)} characters from: {cell.source[:80]}"
            printed.append(text)
        if PLOT_CALL.search(cell.source.strip().splitlines()[-1]):
            kinds = [k for o in cell.outputs for k in o.get("data", {})]
            assert "image/png" in kinds, f"no picture from: {cell.source[:80]}"
    everything = "\n".join(printed)
    assert "matplotlib backend unchanged" in everything
    assert "Traceback" not in everything
    if TARGETS[name] is not None:
        pattern, target = TARGETS[name]
        found = re.search(pattern, everything)
        assert found, f"{name} printed no accuracy"
        assert float(found.group(1)) >= target, found.group(0)
