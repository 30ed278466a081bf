"""Weights that load without cnnlab: the documented torch-only recipe rebuilds every model."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cnnlab.engine import checkpoint as ckpt
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models
from cnnlab.models.portable import layer_specs
from cnnlab.run import load

ROOT = Path(__file__).resolve().parents[2]


def _recipe() -> dict:
    """Run the python block of the docs that defines ``load_plain`` and return its names."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    blocks = [
        b
        for page in pages
        for b in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
        if "def load_plain(" in b
    ]
    assert len(blocks) == 1, "the docs must show the recipe exactly once"
    names: dict = {}
    exec(compile(blocks[0], "load_plain recipe", "exec"), names)  # noqa: S102 - our own docs
    return names


@pytest.fixture(scope="module")
def recipe() -> dict:
    return _recipe()


def _trained_like(name: str, **options) -> nn.Module:
    """A model with random weights and batch-norm statistics (so nothing is the identity)."""
    torch.manual_seed(1)
    model = create_model(name, **options)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _payload(model: nn.Module, normalizer: dict) -> dict:
    return {
        "model_args": dict(model.cnnlab_args),
        "model_state": model.state_dict(),
        "classes": [str(i) for i in range(10)],
        "dataset": "mnist",
        "input_shape": [1, 28, 28],
        "normalizer": normalizer,
        "flatten_order": ckpt.FLATTEN_ORDER,
    }


@pytest.mark.parametrize(
    ("name", "options"),
    [(name, {}) for name in list_models()] + [("fastnet", {"widths": [8, 16, 32], "depth": 2})],
)
def test_plain_torch_rebuild_gives_the_same_logits(name, options, recipe, tmp_path):
    model = _trained_like(name, **options)
    normalizer = {"kind": "meanstd", "mean": [[[0.13]]], "std": [[[0.31]]]}
    path = tmp_path / "best.safetensors"
    payload = _payload(model, normalizer)
    ckpt.save_safetensors(path, payload.pop("model_state"), payload)
    plain, meta = recipe["load_plain"](path)
    assert all(type(m).__module__.startswith("torch.") or type(m).__name__ == "Scale"
               for m in plain)  # fmt: skip
    images = torch.rand(16, 1, 28, 28)
    x = recipe["normalize"](images, meta["normalizer"])
    assert torch.allclose(x, (images - 0.13) / 0.31)
    with torch.no_grad():
        want, got = model(x), plain(x)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()
    assert meta["input_shape"] == [1, 28, 28] and meta["classes"][3] == "3"


def test_speednet_head_is_an_ordinary_flatten_and_fast_layout_agrees():
    model = _trained_like("speednet")
    x = torch.randn(4, 1, 28, 28)
    feats = model.forward_features(x)
    plain = F.linear(feats.flatten(1), model.fc.weight, model.fc.bias)
    with torch.no_grad():
        assert torch.allclose(model(x), plain, atol=1e-5)
        fast = model.to(memory_format=torch.channels_last)(x)
    assert torch.allclose(fast, plain, atol=1e-5)
    assert [s["type"] for s in layer_specs(model)][-2:] == ["Flatten", "Linear"]


def test_old_speednet_files_with_nhwc_head_still_load(tmp_path):
    """Files written before flatten_order was recorded hold the head in NHWC order."""
    model = _trained_like("speednet")
    c, h, w = model.fc.map_shape
    old_state = dict(model.state_dict())
    weight = old_state["fc.weight"]
    old_state["fc.weight"] = weight.view(-1, c, h, w).permute(0, 2, 3, 1).reshape(weight.shape)
    x = torch.randn(4, 1, 28, 28)
    feats = model.forward_features(x)
    old_forward = F.linear(feats.permute(0, 2, 3, 1).flatten(1), old_state["fc.weight"],
                           old_state["fc.bias"])  # fmt: skip
    payload = {**_payload(model, {"kind": "unit"}), "model_state": old_state}
    del payload["flatten_order"]
    ckpt.save_checkpoint(tmp_path / "c" / "old.pt", payload)
    loaded = load(tmp_path / "c" / "old.pt").model
    with torch.no_grad():
        assert torch.allclose(loaded(x), old_forward, atol=1e-5)
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
    new = create_model("speednet")
    ckpt.load_weights(new, {**payload, "flatten_order": "nchw"})  # marked: taken as is
    assert torch.equal(new.fc.weight, old_state["fc.weight"])


def test_metadata_is_json_and_names_every_tensor(tmp_path):
    from safetensors import safe_open

    model = _trained_like("fastnet")
    path = tmp_path / "m.safetensors"
    payload = _payload(model, {"kind": "unit"})
    ckpt.save_safetensors(path, payload.pop("model_state"), payload)
    with safe_open(str(path), framework="pt") as f:
        meta, keys = f.metadata(), set(f.keys())
    layers = json.loads(meta["layers"])
    assert json.loads(meta["flatten_order"]) == "nchw"
    owned = {k for k in keys if any(k.startswith(s["name"] + ".") for s in layers)}
    assert owned == keys  # every tensor belongs to a listed layer
    assert layers[-1] == {"name": "logit_scale", "type": "Scale", "args": {}}


def test_a_model_that_is_not_a_chain_is_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    with pytest.raises(CnnlabError, match="not a plain chain"):
        layer_specs(Twice(), (1, 8, 8))
    upsample = nn.Sequential(OrderedDict(up=nn.Upsample(scale_factor=2)))
    with pytest.raises(CnnlabError, match=r"layer 'up' \(Upsample\) has no plain torch"):
        layer_specs(upsample, (1, 4, 4))


@pytest.mark.parametrize("flatten_order", ["nchw", None])
def test_exported_speednet_is_portable_also_from_an_old_checkpoint(flatten_order, recipe, tmp_path):
    """`cnnlab export --format safetensors` writes the portable order, even for a checkpoint
    saved before the order was recorded (its NHWC head is converted on load)."""
    from cnnlab.export import export_safetensors

    model = _trained_like("speednet")
    payload = _payload(model, {"kind": "half"})
    if flatten_order is None:  # the old head's layout, unmarked
        c, h, w = model.fc.map_shape
        weight = model.fc.weight.detach()
        old = weight.view(-1, c, h, w).permute(0, 2, 3, 1).reshape(weight.shape)
        payload = {**payload, "model_state": {**model.state_dict(), "fc.weight": old}}
        del payload["flatten_order"]
    ckpt.save_checkpoint(tmp_path / "best.pt", payload)
    loaded = load(tmp_path / "best.pt")
    x = torch.randn(8, 1, 28, 28)
    result = export_safetensors(loaded, tmp_path / "m.safetensors", x)
    assert result.max_abs_diff < 1e-5
    plain, meta = recipe["load_plain"](tmp_path / "m.safetensors")
    with torch.no_grad():
        assert torch.allclose(plain(x), model(x), atol=1e-5)
    images = torch.rand(2, 1, 28, 28)
    assert torch.equal(recipe["normalize"](images, meta["normalizer"]), (images - 0.5) / 0.5)
