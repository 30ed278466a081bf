"""Untrusted files: a checkpoint whose pickle would run code is refused everywhere, unopened.

The payload's ``__reduce__`` calls ``open(marker, "w")``: harmless, but it leaves a file behind
if the code ever runs. Every entry point that loads a checkpoint is fed it (``evaluate``,
``predict``, ``export``, ``serve``, the viz pictures, ``report``, ``train --resume`` through
``last.pt`` and through ``best.pt``), must exit 2 with the one-line refusal, and the marker must
not exist. Also: only ``weights_only=True`` loads in the source, TorchScript archives refused,
manifests cannot point outside their folder, downloads are checked before they are kept, and
upload file names never reach the file system.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.errors import CheckpointError, DataError

SRC = Path(cnnlab.__file__).parent
# the refusal names the global the pickle wanted: open() pickles as io.open
REFUSAL = (
    r"refusing to load (?P<path>\S+): it contains pickled code/objects \(io\.open\), not only "
)
REFUSAL += "tensors"


class Payload:
    """Unpickling this calls open(marker, 'w'): proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_checkpoint(path: Path, marker: Path, run: Path) -> Path:
    """A real checkpoint of ``run`` with the payload hidden in its metrics."""
    payload = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    payload["metrics"] = {"val_accuracy": Payload(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def evil_run(folder: Path, marker: Path, run: Path, which: str) -> Path:
    """A copy of the run folder whose ``which`` checkpoint carries the payload."""
    shutil.copytree(run, folder)
    evil_checkpoint(folder / "checkpoints" / f"{which}.pt", marker, run)
    return folder


def test_the_payload_is_live(tmp_path, digits_run):
    """Without weights_only the same file does run the code: the test is not vacuous."""
    marker = tmp_path / "pwned"
    path = evil_checkpoint(tmp_path / "evil.pt", marker, digits_run)
    torch.load(path, weights_only=False)
    assert marker.exists()


ENTRY_POINTS = {
    "evaluate": lambda ck, run: ["evaluate", str(ck), "--out", "out"],
    "predict": lambda ck, run: ["predict", str(ck), "in.png"],
    "export-onnx": lambda ck, run: ["export", str(ck), "--format", "onnx", "--out", "out/m.onnx"],
    "export-safetensors": lambda ck, run: [
        "export",
        str(ck),
        "--format",
        "safetensors",
        "--out",
        "out/m.safetensors",
    ],  # fmt: skip
    "serve": lambda ck, run: ["serve", str(ck), "--port", "0"],
    "viz-filters": lambda ck, run: ["viz", "filters", str(ck), "--out", "out/f.png"],
    "viz-features": lambda ck, run: ["viz", "features", str(ck), "in.png", "--out", "out/f.png"],
    "report": lambda ck, run: ["report", str(ck), "--image", "in.png", "--out", "out/r.html"],
    "evaluate-run-folder": lambda ck, run: ["evaluate", str(run), "--out", "out"],
    "resume-last": lambda ck, run: ["train", "--resume", str(run), "--quiet"],
    "resume-best": lambda ck, run: ["train", "--resume", str(run), "--quiet"],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_pickle_payload_refused(entry, tmp_path, digits_run, monkeypatch, run_cli):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    Image.new("L", (28, 28), 255).save(tmp_path / "in.png")
    marker = tmp_path / "pwned"
    ck = evil_checkpoint(tmp_path / "evil.pt", marker, digits_run)
    which = "best" if entry in ("resume-best", "evaluate-run-folder") else "last"
    run = evil_run(tmp_path / "run", marker, digits_run, which)
    rc, _, err = run_cli(*ENTRY_POINTS[entry](ck, run))
    assert not marker.exists(), f"{entry}: the pickled code ran"
    assert rc == 2, err
    match = re.fullmatch(f"cnnlab: error: {REFUSAL}\n", err)
    assert match, err
    assert Path(match["path"]).name in ("evil.pt", f"{which}.pt")
    assert not list((tmp_path / "out").iterdir()), "output written from a refused checkpoint"


def test_serve_app_creation_refuses_the_payload(tmp_path, digits_run):
    from cnnlab.run import load

    marker = tmp_path / "pwned"
    with pytest.raises(CheckpointError, match="refusing to load"):
        load(evil_checkpoint(tmp_path / "evil.pt", marker, digits_run))
    assert not marker.exists()


def test_torchscript_archive_is_refused(tmp_path, digits_run, capsys):
    """A TorchScript file holds code too: `predict` does not run it."""
    from cnnlab.run import load as load_model

    model = load_model(digits_run).model
    traced = torch.jit.trace(model, torch.zeros(1, 1, 28, 28))
    traced.save(str(tmp_path / "ts.pt"))
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*ts\.pt: .*TorchScript"):
        load_checkpoint(tmp_path / "ts.pt")
    with pytest.raises(CheckpointError, match=r"ts\.pt is a TorchScript archive, which holds code"):
        load_model(tmp_path / "ts.pt")  # only trust_code=True runs it


def _calls(name: str) -> list[tuple[Path, int, ast.Call]]:
    """Every call ``*.name(...)`` / ``name(...)`` in the package source."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    found.append((path, node.lineno, node))
    return found


def test_every_torch_load_is_weights_only():
    loads = _calls("load")
    torch_loads = [
        (p, n, c) for p, n, c in loads if ast.unparse(c.func) in ("torch.load", "load")
        and p.name != "idx.py"
    ]  # fmt: skip
    assert torch_loads, "expected the checkpoint loader"
    for path, line, call in torch_loads:
        if ast.unparse(call.func) != "torch.load":
            continue
        flags = {kw.arg: ast.unparse(kw.value) for kw in call.keywords}
        assert flags.get("weights_only") == "True", f"{path}:{line}: {ast.unparse(call)}"


def test_no_other_unpicklers_in_the_source():
    """pickle/yaml/numpy loaders that can run code are absent; np.load refuses pickles."""
    text = {p: p.read_text() for p in SRC.rglob("*.py")}
    for path, source in text.items():
        for bad in ("pickle.load", "yaml.load(", "yaml.unsafe_load", "marshal.load", "dill.",
                    "joblib.load"):  # fmt: skip
            assert bad not in source, f"{path}: {bad}"
    for name in ("eval", "exec"):  # the builtins, not model.eval()
        assert not [(p, n) for p, n, c in _calls(name) if isinstance(c.func, ast.Name)]
    for path, line, call in _calls("load"):
        if ast.unparse(call.func) == "np.load":
            flags = {kw.arg: ast.unparse(kw.value) for kw in call.keywords}
            assert flags.get("allow_pickle") == "False", f"{path}:{line}"


def test_onnx_files_are_run_by_onnx_runtime_only():
    """User .onnx files go to onnxruntime.InferenceSession; onnx.load only re-reads our own
    freshly exported temp file (to stamp the manifest) inside export.py."""
    sessions = [p.name for p, _, c in _calls("InferenceSession")]
    assert "backends.py" in sessions
    onnx_loads = [(p.name, n) for p, n, c in _calls("load") if ast.unparse(c.func) == "onnx.load"]
    assert all(name == "export.py" for name, _ in onnx_loads), onnx_loads


def test_manifest_cannot_name_weights_outside_its_folder(tmp_path, run_cli):
    (tmp_path / "m.json").write_text(
        '{"model_args": {"name": "lenet5"}, "input_shape": [1, 28, 28], "normalizer": '
        '{"kind": "unit"}, "classes": ["0","1","2","3","4","5","6","7","8","9"], '
        '"weights": "../../etc/passwd"}'
    )
    rc, _, err = run_cli("predict", str(tmp_path / "m.json"), "x.png")
    assert rc == 2 and err.startswith("cnnlab: error: ") and err.count("\n") == 1, err
    assert re.fullmatch(
        r"cnnlab: error: \S+m\.json: 'weights' must be a file name beside it, "
        r"got '\.\./\.\./etc/passwd'\n",
        err,
    ), err


def test_download_is_verified_before_it_is_kept(tmp_path, monkeypatch):
    """A mirror serving the wrong bytes: refused by checksum, nothing written."""
    from cnnlab.data import download
    from cnnlab.data.registry import get_info

    info = get_info("mnist").files["test_labels"]
    monkeypatch.setattr(download, "_fetch", lambda url, timeout, limit: b"\x1f\x8b not mnist")
    with pytest.raises(DataError, match="checksum mismatch"):
        download.download_file(info, tmp_path, ["http://127.0.0.1:9/mirror"])
    assert not list(tmp_path.iterdir())


def test_upload_file_names_never_touch_the_disk(tmp_path, digits_run, monkeypatch):
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from cnnlab.run import load
    from cnnlab.serve.app import create_app

    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    drawing = Image.new("L", (28, 28), 0)
    drawing.paste(255, (12, 4, 16, 24))  # a drawn 1 (a blank image is refused before this)
    drawing.save(buf, format="PNG")
    target = tmp_path / "planted.png"
    names = [f"../../../../{target}", str(target), "..\\..\\x.png", "con.png\x00.sh"]
    with TestClient(create_app(load(digits_run))) as client:
        for name in names:
            r = client.post("/predict", files={"file": (name, buf.getvalue(), "image/png")})
            assert r.status_code == 200, r.text
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    source = (SRC / "serve" / "app.py").read_text()
    assert ".filename" not in source, "the upload's filename is read somewhere"
