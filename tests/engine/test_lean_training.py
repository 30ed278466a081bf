"""A training run imports only what training needs, and the optimisers that make it so are
torch's own arithmetic.

``torch._dynamo`` (pulled in by torch's optimiser wrappers, 1.3 s with sympy) and matplotlib
(for ``curves.png``, about 1 s) used to cost as much as training the fast recipe.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import torch

from cnnlab.config import TrainConfig
from cnnlab.engine.optim import build_optimizer

FIT_AND_LIST_MODULES = """
import json, sys
from cnnlab.config import TrainConfig
from cnnlab.engine import fit
from cnnlab.viz.curves_png import CurvesCallback
config = TrainConfig(dataset="digits", max_steps=3, batch_size=32, optimizer=sys.argv[1],
                     runs_dir=sys.argv[2], threads=1)
result = fit(config, callbacks=[CurvesCallback()])
heavy = ("torch._dynamo", "matplotlib", "sympy")
print(json.dumps({"loaded": [m for m in heavy if m in sys.modules],
                  "curves": (result.run_dir / "curves.png").stat().st_size,
                  "steps": result.steps}))
"""


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_imports_neither_dynamo_nor_matplotlib(tmp_path, optimizer):
    proc = subprocess.run(
        [sys.executable, "-c", FIT_AND_LIST_MODULES, optimizer, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["steps"] == 3
    assert report["loaded"] == [], f"a 3-step fit imported {report['loaded']}"
    assert report["curves"] > 1000  # the picture is still drawn


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 3))


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int = 4) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(8, 1, 6, 6, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "nadam", "rmsprop"])
def test_eager_optimizers_step_exactly_like_torchs(name):
    config = TrainConfig(optimizer=name, momentum=0.9, weight_decay=1e-3)
    ours_model, torch_model = _net(), _net()
    ours = build_optimizer(ours_model.parameters(), config)
    base = type(ours).__mro__[1]  # the torch class it specialises
    assert base.__module__.startswith("torch.optim") and type(ours).__name__ == base.__name__
    accepted = inspect.signature(base).parameters  # AdamW keeps a flag its __init__ sets itself
    kwargs = {k: v for k, v in ours.defaults.items() if k in accepted}
    theirs = base(torch_model.parameters(), **kwargs)
    _train(ours_model, ours)
    _train(torch_model, theirs)
    want = torch_model.state_dict()
    for key, value in ours_model.state_dict().items():
        assert torch.equal(value, want[key]), key
    assert not torch.equal(ours_model[0].weight, _net()[0].weight)  # the steps moved weights
    # the checkpoint format is torch's: our state loads into torch's class and back
    saved = ours.state_dict()
    theirs.load_state_dict(saved)
    ours.load_state_dict(theirs.state_dict())
    assert saved["param_groups"] == theirs.state_dict()["param_groups"]
    assert ours.state_dict()["state"].keys() == saved["state"].keys()
