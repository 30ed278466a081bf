"""Why did the model say that? Input-gradient saliency and Grad-CAM for one image.

Input gradient: ``d logit[target] / d input``. For single-channel (gray) inputs the signed
gradient is drawn directly (red: brighter here raises the score, blue: lowers it); for colour
inputs the largest magnitude over the channels is drawn. Grad-CAM (Selvaraju et al. 2017)
weights the last feature map's channels by their mean gradient, keeps the positive part and
upsamples it to the input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.run import Run
from cnnlab.run import as_run as load_run
from cnnlab.viz._grid import DIVERGING, GRAY, HEAT, new_figure, show, symmetric_limits
from cnnlab.viz.features import feature_layers
from cnnlab.viz.model_input import ModelInput, load_input


@dataclass(frozen=True)
class Saliency:
    target: int  # class explained
    probs: np.ndarray  # (num_classes,)
    gradient: np.ndarray  # (C, H, W) signed d logit / d input
    magnitude: np.ndarray  # (H, W) max |gradient| over channels
    cam: np.ndarray | None  # (H, W) Grad-CAM in [0, 1] at input size; None without a conv map
    cam_small: np.ndarray | None  # (h, w) Grad-CAM at the feature map's size, unscaled
    image: ModelInput
    run: Run


def resolve_target(target, classes: tuple[str, ...], predicted: int) -> int:
    """None -> the prediction; an index or a class name -> its index."""
    if target is None or target == "":
        return predicted
    text = str(target)
    if text in classes:
        return classes.index(text)
    try:
        index = int(text)
    except ValueError:
        raise CnnlabError(
            f"target {text!r} is not a class index or name ({', '.join(classes)})"
        ) from None
    if not 0 <= index < len(classes):
        raise CnnlabError(f"target={index} is outside 0..{len(classes) - 1}")
    return index


def _forward(model, x):
    """Logits and the last spatial feature map (a non-leaf tensor kept for its gradient)."""
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        feats = model.forward_features(x)
        if feats.dim() == 4:
            feats.retain_grad()
            return model.forward_head(feats), feats
        return model.forward_head(feats), None
    layers = feature_layers(model)
    captured = {}
    if layers:
        handle = layers[-1][1].register_forward_hook(
            lambda _m, _i, out: captured.setdefault("f", out)
        )
    try:
        logits = model(x)
    finally:
        if layers:
            handle.remove()
    feats = captured.get("f")
    if feats is not None:
        feats.retain_grad()
    return logits, feats


def _grad_cam(feats, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    import torch.nn.functional as F

    weights = feats.grad[0].mean(dim=(1, 2))  # (K,) channel importance
    small = F.relu((weights[:, None, None] * feats[0]).sum(0)).detach()  # (h, w)
    big = F.interpolate(small[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    big = big.numpy().astype(np.float64)
    top = big.max()
    return (big / top if top > 0 else big), small.numpy().astype(np.float64)


def saliency(run, image, *, target=None, which: str = "best", data_dir=None) -> Saliency:
    """Input gradient and Grad-CAM of ``target`` (default: the predicted class)."""
    r = load_run(run, which)
    inp = load_input(image, r, data_dir)
    x = inp.tensor.clone().requires_grad_(True)
    logits, feats = _forward(r.model, x)
    probs = logits.detach().softmax(-1)[0].numpy().astype(np.float64)
    t = resolve_target(target, r.classes, int(np.argmax(probs)))
    logits[0, t].backward()
    grad = x.grad[0].numpy().astype(np.float64)
    cam = cam_small = None
    if feats is not None and feats.grad is not None:
        cam, cam_small = _grad_cam(feats, tuple(x.shape[-2:]))
    return Saliency(t, probs, grad, np.abs(grad).max(0), cam, cam_small, inp, r)


def plot_saliency(run, image, *, target=None, which: str = "best", data_dir=None) -> Figure:
    """Four panels: input, signed gradient, |gradient|, Grad-CAM over the input."""
    s = saliency(run, image, target=target, which=which, data_dir=data_dir)
    fig = new_figure(11.5, 3.6)
    axes = fig.subplots(1, 4)
    classes, pred = s.run.classes, int(np.argmax(s.probs))
    show(
        axes[0],
        s.image.display,
        cmap=GRAY,
        vmin=0,
        vmax=1,
        title=f"input\npredicted {classes[pred]} ({s.probs[pred]:.0%})",
    )
    signed = s.gradient[0] if s.gradient.shape[0] == 1 else s.gradient.sum(0)
    lo, hi = symmetric_limits(signed)
    im = show(
        axes[1],
        signed,
        cmap=DIVERGING,
        vmin=lo,
        vmax=hi,
        title=f"d logit[{classes[s.target]}] / d input\n(red raises, blue lowers)",
    )
    fig.colorbar(im, ax=axes[1], shrink=0.75)
    top = float(s.magnitude.max()) or 1.0
    show(axes[2], s.magnitude, cmap=HEAT, vmin=0, vmax=top, title="|gradient| (saliency)")
    show(axes[3], s.image.display, cmap=GRAY, vmin=0, vmax=1)
    if s.cam is not None:
        h, w = s.cam_small.shape
        im = axes[3].imshow(s.cam, cmap=HEAT, vmin=0, vmax=1, alpha=0.55, interpolation="bilinear")
        axes[3].set_title(f"Grad-CAM ({h}x{w} map)\nover the input", fontsize=9)
        fig.colorbar(im, ax=axes[3], shrink=0.75)
    else:
        axes[3].set_title("Grad-CAM: n/a\n(no conv feature map)", fontsize=9)
    fig.suptitle(f"{s.run.name}: {s.image.name}, explaining class {classes[s.target]}", fontsize=10)
    return fig
