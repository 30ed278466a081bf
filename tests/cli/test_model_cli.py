"""``cnnlab models`` and ``cnnlab summary``: output, JSON, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.models import list_models


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models: one intra-op thread beats two fighting over a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_models_lists_every_model(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["model", "params", "description"]
    assert [line.split()[0] for line in lines[1:]] == list_models()
    assert any(line.split()[:2] == ["tutorial_cnn", "93,322"] for line in lines)


def test_models_json(run_cli):
    code, out, _ = run_cli("models", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["model_a"]["params"] == 28_938 and rows["mlp"]["description"]


def test_summary_tutorial_cnn_text(run_cli):
    code, out, _ = run_cli("summary", "tutorial_cnn")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if "(" in line and ")" in line}
    assert "(32, 26, 26)" in rows["conv1"] and "320" in rows["conv1"]
    assert "(576,)" in rows["flatten"]
    assert "Total params: 93,322" in out
    assert rows["pool2"].split()[-1] == "0-25"  # Covers: floor pooling drops rows 26-27
    assert "26 (all)" in rows["fc1"]  # a dense unit sees every covered pixel
    assert "Never seen: input rows 26-27 and columns 26-27 of 28x28" in out


def test_summary_json_with_options(run_cli):
    argv = ["summary", "fastnet", "--input-size", "3,32,32", "--num-classes", "5"]
    code, out, _ = run_cli(*argv, "-o", "widths=[8,16]", "--depth", "1", "--json")
    d = json.loads(out)
    assert code == 0 and d["input_size"] == [3, 32, 32] and d["output_shape"] == [5]
    assert [r["name"] for r in d["rows"]][:2] == ["stage1", "stage2"]
    assert all(r["depth"] == 1 for r in d["rows"])
    assert d["coverage"] == [[0, 31], [0, 31]] and d["unseen"]["bottom"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "nope"], "unknown model 'nope'; choose one of: fashion_cnn"),
        (["summary", "tutorial_cnn", "--input-size", "1,28"], "'1,28' must be three positive"),
        (["summary", "tutorial_cnn", "--input-size", "a,b,c"], "'a,b,c' must be three positive"),
        (["summary", "tutorial_cnn", "--input-size", "1,8,8"], "input_size=8x8 is too small"),
        (["summary", "model_a", "-o", "nope=1"], "unknown option(s) nope for model 'model_a'"),
        (["summary", "model_a", "-o", "pool"], "--option 'pool' must look like KEY=VALUE"),
        (["summary", "model_a", "--depth", "0"], "depth=0 must be an integer >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(run_cli, argv, message):
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert err.startswith("cnnlab: error: ") and err.count("\n") == 1
    assert message in err
