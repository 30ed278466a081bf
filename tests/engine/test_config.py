"""TrainConfig: types, unknown keys, YAML, recipe < YAML < flag precedence."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from cnnlab.config import RECIPES, TrainConfig, read_yaml, resolve_config
from cnnlab.errors import ConfigError


def test_every_field_has_a_comment():
    import inspect

    import cnnlab.config as mod

    source = inspect.getsource(mod.TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        line = next(ln for ln in source.splitlines() if ln.strip().startswith(f"{f.name}:"))
        assert "#" in line, f.name


def test_frozen_and_overrides_return_copies():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    new = cfg.with_overrides(epochs=3, lr=1)
    assert (cfg.epochs, new.epochs, new.lr) == (5, 3, 1.0)
    assert isinstance(new.lr, float)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochz", 1, "unknown option 'epochz'"),
        ("epochs", "five", "epochs='five' should be int"),
        ("epochs", 2.5, "epochs=2.5 should be int"),
        ("lr", "fast", "lr='fast' should be float or null"),
        ("augment", "yes", "augment='yes' should be bool"),
        ("batch_size", True, "batch_size=True should be int"),
        ("optimizer", "adagrad", "optimizer='adagrad' is not one of"),
        ("epochs", 0, "epochs=0 must be positive"),
        ("val_fraction", 1.5, "val_fraction=1.5 must be in [0, 1)"),
    ],
)
def test_bad_values_raise_config_error_naming_them(key, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig().with_overrides(**{key: value})


def test_accuracy_monitor_needs_mode_max():
    with pytest.raises(ConfigError, match="mode='min'"):
        TrainConfig(monitor="val_accuracy").with_overrides()
    assert TrainConfig().with_overrides(monitor="val_accuracy", mode="max").mode == "max"


def test_precedence_defaults_recipe_yaml_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 7\nbatch-size: 64\nlr: 0.5\n")
    cfg = resolve_config(recipe="fast", yaml_path=path, lr=0.1, seed=None)
    assert cfg.model == RECIPES["fast"]["model"]  # from the recipe
    assert cfg.epochs == 7 and cfg.batch_size == 64  # YAML beats the recipe
    assert cfg.lr == 0.1  # the flag beats YAML
    assert cfg.seed == 0  # a flag left at None changes nothing
    assert cfg.recipe == "fast"


def test_notebook_recipe_is_issue_defaults():
    cfg = resolve_config(recipe="notebook")
    got = (cfg.model, cfg.optimizer, cfg.batch_size, cfg.epochs)
    assert got == ("tutorial_cnn", "adam", 150, 5)


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(bad)
    bad.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(bad)
    bad.write_text("optimiser: adam\n")
    with pytest.raises(ConfigError, match=f"{bad}: unknown option 'optimiser'"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="unknown recipe 'slow'"):
        resolve_config(recipe="slow")


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(model_kwargs={"width": 8}).with_overrides(epochs=2, name="x")
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert TrainConfig.from_yaml(path) == cfg


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_cpu_optimizers_use_torch_fused_kernels(name):
    from cnnlab.engine.optim import build_optimizer

    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model.parameters(), TrainConfig(optimizer=name))
    assert opt.defaults["fused"] is True
    model(torch.ones(1, 3)).sum().backward()
    before = model.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.weight)
