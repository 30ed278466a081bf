"""Training recipes (`cnnlab train --recipe NAME`): values applied, overridable, and the fast
recipe reaching a stated accuracy on an MNIST subset (an acceptance test, not a timing test)."""

from __future__ import annotations

import pytest
import torch

import cnnlab.models.speed  # noqa: F401  (registers speednet)
from cnnlab.config import RECIPES, TrainConfig, resolve_config
from cnnlab.data import load_dataset
from cnnlab.engine import fit
from cnnlab.engine.evaluate import evaluate
from cnnlab.errors import ConfigError
from cnnlab.models import create_model

# The fast recipe, unchanged except for the data size, thread count and length: the first 12,000
# MNIST training images (11,400 after the recipe's 5% validation split), 2 epochs (180 steps of
# batch 128, instead of the recipe's 267 steps), must reach this accuracy on the first 2,000
# test images.
FAST_SUBSET_TEST_ACCURACY = 0.97


def test_fast_recipe_reaches_accuracy_on_mnist_subset(tmp_path, shared_data):
    config = resolve_config(
        recipe="fast",
        data_dir=str(shared_data),
        limit_train=12_000,
        epochs=2,
        threads=1,  # one thread: robust on a shared, busy CI machine
        runs_dir=str(tmp_path),
    ).with_overrides(max_steps=None)
    assert config.model == RECIPES["fast"]["model"] and config.recipe == "fast" and config.whiten
    result = fit(config)
    test = load_dataset("mnist", "test", data_dir=str(shared_data)).subset(torch.arange(2000))
    from cnnlab.data import Normalizer
    from cnnlab.engine import load_checkpoint

    payload = load_checkpoint(result.run_dir / "checkpoints" / "best.pt")
    normalizer = Normalizer.from_state(payload["normalizer"])
    accuracy = evaluate(result.model, test, normalizer).accuracy
    assert accuracy >= FAST_SUBSET_TEST_ACCURACY, (accuracy, result.history)
    assert payload["config"]["recipe"] == "fast"
    assert payload["config"]["channels_last"] is True and payload["config"]["bf16"] is True
    assert result.train_seconds > 0 and result.steps == 2 * 90  # ceil(11,400 / 128) per epoch


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_is_valid_and_its_model_trains_one_step(name):
    cfg = resolve_config(recipe=name)
    for key, value in RECIPES[name].items():
        assert cfg.to_dict()[key] == value, key
    model = create_model(cfg.model, **cfg.model_kwargs)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(8, 1, 28, 28)
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(8))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_flags_and_yaml_override_recipe_values(tmp_path):
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text("batch_size: 64\nlr: 0.05\n")
    cfg = resolve_config(recipe="fast", yaml_path=yaml_path, lr=0.3, epochs=None)
    assert cfg.batch_size == 64  # YAML beats the recipe
    assert cfg.lr == 0.3  # a flag beats the YAML file
    assert cfg.epochs == RECIPES["fast"]["epochs"]  # a flag left at None changes nothing
    assert cfg.optimizer == RECIPES["fast"]["optimizer"]  # untouched recipe values stay
    assert cfg.label_smoothing == RECIPES["fast"]["label_smoothing"]
    plain = resolve_config(lr=0.3)
    assert plain.model == TrainConfig().model and plain.recipe is None


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown recipe 'fastest'.*fast"):
        resolve_config(recipe="fastest")


def test_speednet_builds_trains_and_rejects_bad_options():
    model = create_model("speednet")
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert create_model(**model.cnnlab_args).cnnlab_args == model.cnnlab_args
    assert create_model("speednet", in_channels=3, input_size=32)(torch.zeros(1, 3, 32, 32)).shape
    with pytest.raises(Exception, match="divisible by unshuffle=2"):
        create_model("speednet", input_size=27)
    with pytest.raises(Exception, match="must have 2 entries"):
        create_model("speednet", widths=[8, 16, 32])


@pytest.mark.parametrize("recipe", ["fast", "tutorial-fast", "best-fashion"])
def test_another_model_leaves_the_recipes_model_options_behind(recipe):
    """`--recipe R --model M`: R's loop on M, without R's model_kwargs (options of R's model)."""
    own = RECIPES[recipe]["model"]
    other = "model_a" if own != "model_a" else "tutorial_cnn"
    cfg = resolve_config(recipe=recipe, model=other)
    assert cfg.model == other and cfg.model_kwargs == {}
    create_model(cfg.model, **cfg.model_kwargs)
    assert cfg.lr == RECIPES[recipe]["lr"]  # the loop stays
    assert resolve_config(recipe=recipe, model=own).model_kwargs == RECIPES[recipe]["model_kwargs"]
    given = resolve_config(recipe=recipe, model=other, model_kwargs={"pool": "avg"})
    assert given.model_kwargs == {"pool": "avg"}
