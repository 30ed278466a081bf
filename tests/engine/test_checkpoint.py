"""Checkpoints: atomic writes, weights_only loading, refusing pickles, architecture checks."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from cnnlab.engine import checkpoint as ckpt
from cnnlab.errors import CheckpointError
from cnnlab.models import create_model
from cnnlab.run import load


def _payload(model: torch.nn.Module) -> dict:
    return {
        "format_version": ckpt.FORMAT_VERSION,
        "model_args": dict(model.cnnlab_args),
        "model_state": model.state_dict(),
        "config": {"lr": 0.1, "model_kwargs": {}},
        "epoch": 1,
        "step": 10,
        "rng_state": ckpt.rng_state(),
        "normalizer": {"kind": "unit"},
        "classes": [str(i) for i in range(10)],
        "dataset": "mnist",
        "input_shape": [1, 28, 28],
    }


def test_round_trip_with_plain_torch_load_and_safetensors(tmp_path):
    model = create_model("tutorial_cnn")
    path = tmp_path / "checkpoints" / "best.pt"
    ckpt.save_checkpoint(path, _payload(model))
    payload = _payload(model)
    description = {k: payload.get(k) for k in ckpt.DESCRIPTION_KEYS}
    ckpt.save_safetensors(
        tmp_path / "checkpoints" / "best.safetensors", payload["model_state"], description
    )
    raw = torch.load(path, weights_only=True)  # what the issue promises users
    assert raw["model_args"]["name"] == "tutorial_cnn"
    for source in (tmp_path, path, tmp_path / "checkpoints" / "best.safetensors"):
        loaded = load(source)
        assert not loaded.model.training
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[key], value)
        assert loaded.classes[3] == "3" and loaded.input_shape == (1, 28, 28)


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = ckpt.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_failed_write_keeps_old_checkpoint_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, {"model_state": {"w": torch.zeros(3)}, "step": 1})
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # some bytes reach the temp file...
        raise OSError(28, "No space left on device")  # ...then the disk fills up

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save_checkpoint(path, {"model_state": {"w": torch.ones(3)}, "step": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


class _Exploit:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_refuses_pickled_code_and_runs_none_of_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model_state": {}, "payload": _Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing to load .*pickled code/objects"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load(path)
    assert not marker.exists()
    # a bare pickle file (not even a torch zip) is refused too
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError):
        ckpt.load_checkpoint(raw)
    assert not marker.exists()


def test_other_architecture_and_missing_keys_are_named(tmp_path):
    path = tmp_path / "a.pt"
    ckpt.save_checkpoint(path, _payload(create_model("model_a")))
    payload = ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="holds a 'model_a' model, not 'tutorial_cnn'"):
        ckpt.load_weights(create_model("tutorial_cnn"), payload)
    broken = _payload(create_model("tutorial_cnn"))
    first = next(iter(broken["model_state"]))
    del broken["model_state"][first]
    ckpt.save_checkpoint(path, broken)
    with pytest.raises(CheckpointError, match=f"missing keys \\['{first}'\\]"):
        load(path)
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        ckpt.load_checkpoint(tmp_path / "junk.pt")
