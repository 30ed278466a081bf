"""`cnnlab train / evaluate / predict` end to end (in-process, small digits runs)."""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import load_dataset

FAST = ["--model", "mlp", "--dataset", "digits", "--threads", "1", "--batch-size", "64"]


def _last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_train_yaml_flags_json_evaluate_predict_resume(tmp_path, capsys):
    runs = tmp_path / "runs"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 4\nbatch_size: 50\noptimizer: sgd\nmomentum: 0.9\nlr: 0.05\n")
    # flags override the YAML (epochs), the YAML overrides the recipe (optimizer, lr)
    argv = ["train", "--recipe", "notebook", "--config", str(cfg), *FAST, "--epochs", "3"]
    assert main([*argv, "--runs-dir", str(runs), "--json", "--name", "cli"]) == 0
    summary = _last_json(capsys)
    run = runs / "cli" / "version_0"
    assert summary["run_dir"] == str(run) and summary["epochs"] == 3
    assert summary["train_seconds"] > 0 and 0.5 < summary["val_accuracy"] <= 1
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["epochs"], saved["batch_size"], saved["optimizer"]) == (3, 64, "sgd")
    assert (saved["lr"], saved["model"], saved["recipe"]) == (0.05, "mlp", "notebook")
    assert (run / "curves.png").stat().st_size > 0

    assert main(["evaluate", str(run), "--json", "--threads", "1"]) == 0
    ev = _last_json(capsys)
    assert (
        0.5 < ev["accuracy"] <= 1 and ev["loss"] > 0 and set(ev["per_class"]) == set("0123456789")
    )
    assert ev["per_class"]["3"]["support"] > 0
    for name in ("confusion.png", "worst_errors.png", "metrics.json"):
        assert (run / "evaluation" / name).stat().st_size > 0
    # --fast (bf16 where supported, channels_last, fused TorchScript graph): same predictions
    # up to bf16 rounding
    out = tmp_path / "fast-eval"
    assert main(["evaluate", str(run), "--fast", "--json", "--out", str(out)]) == 0
    fast = _last_json(capsys)
    assert abs(fast["accuracy"] - ev["accuracy"]) <= 0.01 and fast["images"] == ev["images"]
    assert abs(fast["loss"] - ev["loss"]) < 0.05 * ev["loss"] + 1e-3

    test = load_dataset("digits", "test")
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"d{i}.png")
        Image.fromarray(255 - test.images[i, 0].numpy()).save(paths[-1])
    argv = ["predict", str(run), *map(str, paths), "--json", "--show", str(tmp_path / "s.png")]
    assert main(argv) == 0
    preds = _last_json(capsys)
    assert [p["path"] for p in preds] == list(map(str, paths))
    assert {"label", "class_name", "probability", "probs"} <= set(preds[0])
    assert (tmp_path / "s.png").stat().st_size > 0

    # --resume auto continues the latest version of the run name in the same folder
    argv = ["train", *FAST, "--runs-dir", str(runs), "--name", "cli", "--resume", "auto"]
    assert main([*argv, "--epochs", "4", "--json"]) == 0
    resumed = _last_json(capsys)
    assert resumed["run_dir"] == str(run) and resumed["epochs"] == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--optimizer", "adagrad"], "optimizer='adagrad' is not one of"),
        (["train", "--recipe", "slowest"], "unknown recipe 'slowest'"),
        (["train", "--resume", "nowhere/at/all"], "nothing to resume in nowhere/at/all"),
        (["evaluate", "no/such/run"], "no such checkpoint or run folder: no/such/run"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and message in err and err.count("\n") == 1


def test_unknown_yaml_key(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("epochs: 1\nlearning_rate: 0.1\n")
    with pytest.raises(SystemExit):
        main(["train", "--config", str(cfg)])
    assert "unknown option 'learning_rate'" in capsys.readouterr().err


def test_resume_applies_length_flags_whatever_their_value_and_refuses_the_rest(tmp_path, capsys):
    runs = tmp_path / "runs"
    base = [*FAST, "--runs-dir", str(runs), "--name", "r", "--val-fraction", "0"]
    assert main(["train", *base, "--epochs", "1", "--json", "--quiet"]) == 0
    run = runs / "r" / "version_0"
    assert _last_json(capsys)["epochs"] == 1
    # 5 is TrainConfig's default number of epochs: it must still apply on resume
    assert main(["train", "--resume", str(run), "--epochs", "5", "--json", "--quiet"]) == 0
    resumed = _last_json(capsys)
    assert resumed["run_dir"] == str(run) and resumed["epochs"] == 5
    # flags that cannot change on resume are refused, naming the flag, before anything runs
    before = (run / "checkpoints" / "last.pt").read_bytes()
    for flags, named in (
        (["--model", "lenet5", "--lr", "0.5"], "--model lenet5"),
        (["--lr", "0.5"], "--lr 0.5"),
        (["--batch-size", "32"], "--batch-size 32"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["train", "--resume", str(run), *flags])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1, err
        assert named in err and "cannot change when resuming" in err and "--epochs" in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_evaluate_quiet_prints_the_accuracy_and_other_class_names_need_force(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", *FAST, "--runs-dir", str(runs), "--max-steps", "5", "--quiet"]) == 0
    run = next(runs.glob("*/version_0"))
    capsys.readouterr()
    assert main(["evaluate", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("accuracy 0.") and "digits test" in out[0]
    # a digits model on Fashion-MNIST: ten classes with other names
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(run), "--dataset", "fashion-mnist", "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert "T-shirt/top" in err and "--force" in err
    argv = ["evaluate", str(run), "--dataset", "fashion-mnist", "--force", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "f")]) == 0
    assert capsys.readouterr().out.startswith("accuracy 0.")


@pytest.mark.parametrize(
    ("name", "hint"),
    [("fashion_mnist", "did you mean fashion-mnist?"), ("MNIST", "did you mean mnist?"),
     ("no-such-data", "")],
)  # fmt: skip
def test_unknown_dataset_lists_the_known_names_and_the_nearest(name, hint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", name, "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert f"unknown dataset {name!r}: not one of mnist, fashion-mnist, digits" in err
    if hint:
        assert hint in err
    else:
        assert "did you mean" not in err
    assert not (tmp_path / "runs").exists()  # refused before any run folder is made
