"""Summary numbers against the notebooks and torchinfo, and receptive-field arithmetic."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models
from cnnlab.models.layers import conv_out
from cnnlab.models.summary import summary


def rows_by_name(s):
    return {r.name: r for r in s.rows}


def test_tutorial_cnn_reproduces_notebook_000():
    s = summary(create_model("tutorial_cnn"), (1, 28, 28))
    assert [r.params for r in s.rows if r.params] == [320, 18_496, 36_928, 36_928, 650]
    assert s.total_params == s.trainable_params == 93_322
    assert s.param_bytes == 93_322 * 4
    r = rows_by_name(s)
    # Keras prints (H, W, C): (26, 26, 32) ... (3, 3, 64) -> 576; we print (C, H, W).
    shapes = [r[n].output_shape for n in ("conv1", "pool1", "conv2", "pool2", "conv3")]
    assert shapes == [(32, 26, 26), (32, 13, 13), (64, 11, 11), (64, 5, 5), (64, 3, 3)]
    assert r["flatten"].output_shape == (576,)
    assert s.output_shape == (10,)
    assert r["conv1"].kernel_size == (3, 3) and r["pool1"].stride == (2, 2)


def test_tutorial_cnn_mult_adds_follow_torchinfo():
    """torchinfo: conv = (weight+bias) * out H*W, linear = weight+bias (batch of one)."""
    s = summary(create_model("tutorial_cnn"))
    macs = {r.name: r.mult_adds for r in s.rows if r.mult_adds}
    assert macs == {
        "conv1": 320 * 26 * 26,  # 216,320
        "conv2": 18_496 * 11 * 11,  # 2,238,016
        "conv3": 36_928 * 3 * 3,  # 332,352
        "fc1": 36_928,
        "fc2": 650,
    }
    assert s.total_mult_adds == 2_824_266  # torchinfo: "Total mult-adds (M): 2.82"
    assert "Total mult-adds (M): 2.82" in s.to_text()


def test_model_a_parameter_shapes_and_rows():
    model = create_model("model_a")
    assert [list(p.shape) for p in model.parameters()] == [
        [16, 1, 5, 5], [16], [32, 16, 5, 5], [32], [10, 1568], [10]
    ]  # fmt: skip
    r = rows_by_name(summary(model))
    assert r["cnn1"].output_shape == (16, 28, 28)  # same padding
    assert r["pool2"].output_shape == (32, 7, 7)
    assert r["flatten"].output_shape == (1568,)


def test_receptive_field_of_tutorial_cnn():
    r = rows_by_name(summary(create_model("tutorial_cnn")))
    got = {
        n: (r[n].receptive_field, r[n].jump) for n in ("conv1", "pool1", "conv2", "pool2", "conv3")
    }
    assert got == {
        "conv1": ((3, 3), (1, 1)),
        "pool1": ((4, 4), (2, 2)),
        "conv2": ((8, 8), (2, 2)),
        "pool2": ((10, 10), (4, 4)),
        "conv3": ((18, 18), (4, 4)),
    }
    assert r["relu3"].receptive_field == (18, 18)  # element-wise layers keep it
    # a dense unit sees the union of all positions: pool2 has no window over rows 26-27
    assert r["pool2"].coverage == r["conv3"].coverage == ((0, 25), (0, 25))
    assert r["conv2"].coverage == ((0, 27), (0, 27))
    assert r["fc1"].receptive_field == (26, 26) and r["fc1"].jump is None
    assert r["flatten"].coverage == r["fc2"].coverage == ((0, 25), (0, 25))


def test_receptive_field_arithmetic_on_known_stack():
    """r_out = r_in + (k-1) d j_in, j_out = j_in s, start_out = start_in + ((k-1)/2 d - p) j_in."""
    stack = nn.Sequential(
        nn.Conv2d(1, 2, 3),  # r 3, j 1, start 1
        nn.MaxPool2d(2),  # r 4, j 2, start 1.5
        nn.Conv2d(2, 2, 3, dilation=2),  # r 4 + 2*2*2 = 12, j 2, start 1.5 + 2*2 = 5.5
        nn.Conv2d(2, 2, 3, stride=2, padding=1),  # r 12 + 2*2 = 16, j 4, start 5.5 + 0
        nn.AvgPool2d(3, stride=1, padding=1),  # r 16 + 2*4 = 24, j 4, start 5.5 + 0
        nn.Flatten(),
        nn.Linear(2 * 5 * 5, 3),
    )
    s = summary(stack, (1, 28, 28))
    got = [(r.receptive_field, r.jump, r.start) for r in s.rows]
    assert got == [
        ((3, 3), (1, 1), (1.0, 1.0)),
        ((4, 4), (2, 2), (1.5, 1.5)),
        ((12, 12), (2, 2), (5.5, 5.5)),
        ((16, 16), (4, 4), (5.5, 5.5)),
        ((24, 24), (4, 4), (5.5, 5.5)),
        ((28, 28), None, None),
        ((28, 28), None, None),
    ]
    assert all(r.coverage == ((0, 27), (0, 27)) for r in s.rows)
    assert [r.output_shape for r in s.rows][:5] == [
        (2, 26, 26), (2, 13, 13), (2, 9, 9), (2, 5, 5), (2, 5, 5)
    ]  # fmt: skip
    assert s.model_name == "Sequential"


def test_receptive_field_of_rectangular_kernels():
    s = summary(nn.Sequential(nn.Conv2d(1, 1, (5, 1)), nn.Conv2d(1, 1, (1, 3), stride=(1, 2))))
    assert [(r.kernel_size, r.receptive_field, r.jump) for r in s.rows] == [
        ((5, 1), (5, 1), (1, 1)),
        ((1, 3), (5, 3), (1, 2)),
    ]
    assert "5x3" in s.to_text()


def _input_gradient(features: nn.Module, unit: tuple[int, int], size=28) -> torch.Tensor:
    x = torch.ones(1, 1, size, size, requires_grad=True)
    features(x)[0, 0, unit[0], unit[1]].backward()
    return x.grad[0, 0]


def _rf_box(row, unit, size=28):
    """Input rows/cols the unit sees according to the summary, clipped to the image."""
    lo, hi = [], []
    for a in (0, 1):
        centre = row.start[a] + unit[a] * row.jump[a]
        half = (row.receptive_field[a] - 1) / 2
        lo.append(max(0, int(centre - half)))
        hi.append(min(size - 1, int(centre + half)))
    return lo, hi


@pytest.mark.parametrize("unit", [(3, 3), (0, 0), (6, 2)])
def test_receptive_field_matches_gradient_exactly(unit):
    """model_b (same padding, avg pools): with positive weights every pixel inside the computed
    receptive field has a positive gradient, and every pixel outside has exactly zero."""
    model = create_model("model_b").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_().add_(0.01)
    row = rows_by_name(summary(model))["pool2"]
    grad = _input_gradient(model.forward_features, unit)
    (r0, c0), (r1, c1) = _rf_box(row, unit)
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[r0 : r1 + 1, c0 : c1 + 1] = True
    assert torch.equal(grad != 0, expected)
    if unit == (3, 3):
        assert (r0, c0, r1, c1) == (6, 6, 21, 21)  # 16x16, fully inside the image


def test_receptive_field_bounds_gradient_of_tutorial_cnn():
    torch.manual_seed(0)
    model = create_model("tutorial_cnn").eval()
    row = rows_by_name(summary(model))["conv3"]
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    model.forward_features(x)[0, :, 1, 1].sum().backward()
    (r0, c0), (r1, c1) = _rf_box(row, (1, 1))
    assert (r0, c0, r1, c1) == (4, 4, 21, 21)
    outside = x.grad[0, 0].clone()
    outside[r0 : r1 + 1, c0 : c1 + 1] = 0
    assert x.grad.abs().sum() > 0 and outside.abs().sum() == 0


def test_depth_limits_rows_but_not_totals():
    model = create_model("fastnet")
    deep, shallow = summary(model, depth=2), summary(model, depth=1)
    assert {r.name for r in shallow.rows} == {n for n, _ in model.named_children()}
    assert any(r.name == "stage1.conv" for r in deep.rows)
    assert deep.total_params == shallow.total_params == 53_353
    assert deep.total_mult_adds == shallow.total_mult_adds
    stage = rows_by_name(shallow)["stage2"]
    parts = [r for r in deep.rows if r.name.startswith("stage2.")]
    assert stage.mult_adds == sum(r.mult_adds for r in parts)
    assert stage.receptive_field == parts[-1].receptive_field == (10, 10)
    assert stage.params == sum(r.params for r in parts)


def test_to_dict_is_json_and_to_text_has_rows():
    s = summary(create_model("lenet5", input_size=32), (1, 32, 32))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["total_params"] == s.total_params and d["input_size"] == [1, 32, 32]
    assert d["rows"][0]["output_shape"] == [6, 32, 32]
    text = s.to_text()
    assert "conv1 (Conv2d)" in text and "Total params: " in text
    assert f"{s.total_params:,}" in text


def test_training_mode_restored_and_errors():
    model = create_model("tutorial_cnn").train()
    summary(model)
    assert model.training
    with pytest.raises(CnnlabError, match=r"input_size=3x28x28 does not fit the model"):
        summary(model, (3, 28, 28))
    with pytest.raises(CnnlabError, match=r"input_size=\(1, 28\) must be three positive ints"):
        summary(model, (1, 28))
    with pytest.raises(CnnlabError, match="depth=0"):
        summary(model, depth=0)


def test_conv_out_agrees_with_ops_shapes():
    """The models' local formula is the one in cnnlab.ops.shapes (kept local: no scipy import)."""
    from cnnlab.ops.shapes import output_size

    for n in range(1, 12):
        for k in range(1, 6):
            for p in range(3):
                for s in (1, 3):
                    for d in (1, 2):
                        ours = conv_out(n, k, p, s, d)
                        if ours >= 1:
                            assert output_size(n, k, p, s, d) == ours
                        else:
                            with pytest.raises(CnnlabError):
                                output_size(n, k, p, s, d)


# -- coverage and receptive fields against input gradients, for every registered model --------
def _randomised(name: str) -> nn.Module:
    """A registered model in eval mode with random batch-norm statistics (not the identity)."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def _gradient_extent(grad: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    """First/last row and column where a (H, W) gradient is non-zero."""
    rows = torch.nonzero(grad.abs().sum(1)).flatten()
    cols = torch.nonzero(grad.abs().sum(0)).flatten()
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def _box_mask(box, size=28) -> torch.Tensor:
    (r0, r1), (c0, c1) = box
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[r0 : r1 + 1, c0 : c1 + 1] = True
    return mask


@pytest.mark.parametrize("name", list_models())
def test_coverage_is_where_the_output_gradient_is_nonzero(name):
    """Sum of |d output_k / d input| over all outputs and 8 random images: non-zero exactly on
    the covered box (max pools pick one input per window, hence several images)."""
    model = _randomised(name)
    x = torch.randn(8, 1, 28, 28, requires_grad=True)
    out = model(x)
    total = torch.zeros(28, 28)
    for k in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[:, k].sum(), x, retain_graph=True)
        total += grad.abs().sum((0, 1))
    s = summary(model)
    assert torch.equal(total != 0, _box_mask(s.coverage))
    assert s.rows[-1].coverage == s.coverage
    assert s.rows[-1].receptive_field == tuple(hi - lo + 1 for lo, hi in s.coverage)
    assert s.unseen == {"top": 0, "bottom": 27 - s.coverage[0][1], "left": 0,
                        "right": 27 - s.coverage[1][1]}  # fmt: skip


def _layer_gradients(model: nn.Module, module: nn.Module, units, n_images=8):
    """|d layer output at each unit / d input| summed over channels and random images."""
    captured = {}
    handle = module.register_forward_hook(lambda _m, _i, out: captured.setdefault("out", out))
    x = torch.randn(n_images, 1, 28, 28, requires_grad=True)
    try:
        model(x)
    finally:
        handle.remove()
    out = captured["out"]
    grads = []
    for i, j in units:
        (grad,) = torch.autograd.grad(out[:, :, i, j].sum(), x, retain_graph=True)
        grads.append(grad.abs().sum((0, 1)))
    return out.shape[-2:], grads


@pytest.mark.parametrize("name", list_models())
def test_unit_boxes_match_gradient_extents_of_conv_and_pool_layers(name):
    """For every conv/pool layer, the first, middle and last unit: the gradient is zero outside
    the summary's box and reaches its every edge (the extent equals the box)."""
    model = _randomised(name)
    rows = rows_by_name(summary(model, depth=99))
    windows = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d,
               nn.AvgPool2d, nn.PixelUnshuffle))]  # fmt: skip
    if name == "mlp":
        assert not windows
    for layer, module in windows:
        h, w = rows[layer].output_shape[1:]
        units = [(0, 0), (h // 2, w // 2), (h - 1, w - 1), (0, w - 1)]
        _, grads = _layer_gradients(model, module, units)
        for unit, grad in zip(units, grads, strict=True):
            box = rows[layer].unit_box(unit)
            assert _gradient_extent(grad) == box, (layer, unit)
            assert not grad[~_box_mask(box)].any(), (layer, unit)


def test_tutorial_cnn_summary_shows_the_unseen_border():
    s = summary(create_model("tutorial_cnn"))
    assert s.coverage == ((0, 25), (0, 25))
    assert s.unseen == {"top": 0, "bottom": 2, "left": 0, "right": 2}
    text = s.to_text()
    assert "Never seen: input rows 26-27 and columns 26-27 of 28x28" in text
    assert "Never seen" in s._repr_html_()
    assert "Never seen" not in summary(create_model("model_a")).to_text()
    rect = summary(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)), (1, 9, 10))
    assert rect.coverage == ((0, 7), (0, 9))  # 7 rows -> 3 pooled: row 8 is dropped
    assert "Never seen: input row 8 of 9x10" in rect.to_text()


def test_repr_is_the_table_and_html_is_a_table():
    s = summary(create_model("lenet5"))
    assert repr(s) == s.to_text() and repr(s).startswith("Model: lenet5")
    page = s._repr_html_()
    assert page.count("<tr>") == len(s.rows) + 1 and "<table class=cnnlab-summary>" in page
    assert "conv1 (Conv2d)" in page and "Total params: 61,706" in page
    s.model_name = "<b>"
    assert "&lt;b&gt;" in s._repr_html_()
