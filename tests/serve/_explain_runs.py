"""Small trained runs for the explainer's browser tests (each trained once per test session).

model_a and speednet: 4,000 MNIST images, one epoch, one thread (a few seconds each), enough to
read a clearly drawn digit. colour: tutorial_cnn on a tiny RGB image folder (red or blue
blobs), trained for a few steps through the library, since ``fit`` reads folders as gray: the
folder is loaded with ``load_image_folder(channels=3)`` and saved as a cnnlab checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mnist_run(model: str, base: Path, data_dir: Path) -> Path:
    from cnnlab.config import TrainConfig
    from cnnlab.engine import fit

    runs = base / "cnnlab-explain-runs"
    done = runs / f"{model}.DONE"
    if done.is_file():
        return Path(done.read_text())
    cfg = TrainConfig(
        model=model,
        dataset="mnist",
        limit_train=4000,
        epochs=1,
        batch_size=32,
        lr=0.003,
        schedule="one-cycle",
        val_size=200,
        threads=1,
        seed=0,
        name=model,
        runs_dir=str(runs),
        data_dir=str(data_dir / "mnist"),
    )
    run_dir = Path(fit(cfg).run_dir)
    done.write_text(str(run_dir))
    return run_dir


def colour_folder(root: Path, per_class: int = 12, size: int = 28) -> Path:
    """``root/red`` and ``root/blue``: a coloured disc at a random place on a dark background."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for name, colour in (("blue", (40, 70, 230)), ("red", (230, 40, 40))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 40, 3)))
            x, y = (int(v) for v in rng.integers(8, 20, 2))
            r = int(rng.integers(4, 8))
            ImageDraw.Draw(img).ellipse((x - r, y - r, x + r, y + r), fill=colour)
            img.save(root / name / f"{i}.png")
    return root


def colour_run(base: Path, steps: int = 12) -> Path:
    """A 3-channel tutorial_cnn trained on :func:`colour_folder`; returns its checkpoint."""
    import torch
    import torch.nn.functional as F

    from cnnlab.data import Normalizer, load_image_folder
    from cnnlab.engine.checkpoint import save_checkpoint
    from cnnlab.models import create_model

    out = base / "cnnlab-explain-runs" / "colour.pt"
    if out.is_file():
        return out
    folder = colour_folder(base / "cnnlab-explain-colour")
    ds = load_image_folder(folder, input_size=28, channels=3)
    torch.manual_seed(0)
    model = create_model("tutorial_cnn", in_channels=3, num_classes=len(ds.classes))
    norm = Normalizer("unit")
    x, y = norm(ds.images), ds.labels.long()
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the other fixtures train: a busy machine is not oversubscribed
    try:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy == 1.0, f"the colour model learned only {accuracy:.0%} of its images"
    save_checkpoint(
        out,
        {
            "format_version": 1,
            "model_args": dict(model.cnnlab_args),
            "model_state": model.state_dict(),
            "classes": list(ds.classes),
            "dataset": str(folder),
            "input_shape": [3, 28, 28],
            "normalizer": norm.state_dict(),
        },
    )
    return out
