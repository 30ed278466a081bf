"""TrainConfig: types, unknown keys, YAML, recipe < YAML < flag precedence."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from cnnlab.config import RECIPES, TrainConfig, read_yaml, resolve_config
from cnnlab.errors import ConfigError


def test_every_field_has_help_and_a_flag_or_is_marked_config_only():
    from cnnlab.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {a.dest: a for a in train._actions}
    config_only = []
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f"{f.name} has no help"
        if f.metadata["cli"]:
            flag = flags.get(f.name)
            assert flag is not None, f"{f.name} has no --{f.name.replace('_', '-')} flag"
            assert flag.help.startswith(f.metadata["help"]), f.name  # the field's help, not a copy
            assert flag.default is None  # unset flags never override recipes or YAML
        else:
            config_only.append(f.name)
    assert config_only == ["model_kwargs", "recipe"]


def test_generated_flags_parse_to_the_field_types():
    from cnnlab.cli import build_parser
    from cnnlab.cli.train_cmds import train_config_from_args

    args = build_parser().parse_args(
        ["train", "--epochs", "3", "--lr", "0.5", "--no-restore-best-weights", "--optimizer", "sgd"]
    )
    cfg = train_config_from_args(args)
    assert (cfg.epochs, cfg.lr, cfg.restore_best_weights, cfg.optimizer) == (3, 0.5, False, "sgd")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lr", float("inf"), "lr=inf must be a finite number in (0, 100]"),
        ("lr", float("nan"), "lr=nan must be a finite number"),
        ("augment_rotate", float("nan"), "augment_rotate=nan must be a finite number"),
        ("momentum", -0.5, "momentum=-0.5 is out of range: must be [0, 1)"),
        ("weight_decay", -1, "weight_decay=-1.0 is out of range: must be [0, 1]"),
        ("seed", -1, "seed=-1 is out of range: must be [0, 4294967295]"),
        ("seed", 2**64 + 1, "seed=18446744073709551617 is out of range"),
        ("monitor", "val_acc", "monitor='val_acc' is not one of val_loss, val_accuracy"),
        ("step_gamma", 0.0, "step_gamma=0.0 is out of range: must be (0, 1]"),
    ],
)
def test_out_of_range_and_non_finite_options_are_refused(key, value, message):
    with pytest.raises(ConfigError) as exc:
        TrainConfig().with_overrides(**{key: value})
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"seed: \xff\xfe", "not UTF-8"),
        (b"model_kwargs: " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b"seed: " + b"9" * 5001, "a number too long"),
        (b"lr: .inf", None),  # parsed, then refused by the range check below
    ],
)
def test_hostile_yaml_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as exc:
        resolve_config(yaml_path=path)
    assert "\n" not in str(exc.value)
    assert (message or "lr=inf must be a finite number") in str(exc.value)


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
        ("epochs", 0, "epochs=0 is out of range: must be >=1"),
        ("val_fraction", 1.5, "val_fraction=1.5 is out of range: must be [0, 1)"),
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
