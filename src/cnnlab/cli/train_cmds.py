"""`cnnlab train | evaluate | predict | reproduce | demo`: the main job's commands.

Only argument parsing and printing live here; the work is done by cnnlab.engine, cnnlab.predict
and cnnlab.viz.training. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

# CLI flag -> TrainConfig field, for flags whose name differs or that need no special handling.
TRAIN_FLAGS: dict[str, tuple[str, Any, str]] = {
    # name: (config key, type, help)
    "model": ("model", str, "registered model name (cnnlab models list)"),
    "dataset": ("dataset", str, "mnist | fashion-mnist | digits | path/to/image-folder"),
    "data_dir": ("data_dir", str, "folder searched first for dataset files"),
    "limit_train": ("limit_train", int, "train on the first N training images only"),
    "val_split": ("val_split", str, "random | last | stratified"),
    "val_fraction": ("val_fraction", float, "fraction of training images held out (0: none)"),
    "val_size": ("val_size", int, "number of training images held out"),
    "validate_on": ("validate_on", str, "split (held-out train images) | test (notebook 002)"),
    "normalize": ("normalize", str, "unit | half | meanstd | pixel"),
    "augment_shift": ("augment_shift", int, "max shift in pixels when augmenting"),
    "augment_rotate": ("augment_rotate", float, "max rotation in degrees when augmenting"),
    "epochs": ("epochs", int, "passes over the training split"),
    "max_steps": ("max_steps", int, "stop after this many optimiser steps"),
    "batch_size": ("batch_size", int, "images per optimiser step"),
    "eval_batch_size": ("eval_batch_size", int, "images per forward pass when evaluating"),
    "optimizer": ("optimizer", str, "sgd | adam | adamw | nadam | rmsprop"),
    "lr": ("lr", float, "peak learning rate (default: the optimiser's usual one)"),
    "momentum": ("momentum", float, "sgd / rmsprop momentum"),
    "weight_decay": ("weight_decay", float, "L2 penalty (decoupled for adamw)"),
    "label_smoothing": ("label_smoothing", float, "label smoothing in [0, 1)"),
    "schedule": ("schedule", str, "constant | step | cosine | one-cycle"),
    "step_epochs": ("step_epochs", float, "step schedule: epochs between lr drops"),
    "step_gamma": ("step_gamma", float, "step schedule: lr factor per drop"),
    "warmup_fraction": ("warmup_fraction", float, "one-cycle: fraction of steps rising to lr"),
    "eval_every": ("eval_every", int, "validate every N steps instead of every epoch"),
    "monitor": ("monitor", str, "metric for early stopping and best checkpoint"),
    "mode": ("mode", str, "min (losses) | max (accuracies)"),
    "patience": ("patience", int, "evaluations without improvement before stopping"),
    "min_delta": ("min_delta", float, "smallest change counted as improvement"),
    "min_epochs": ("min_epochs", int, "never stop early before this many epochs"),
    "checkpoint_every": ("checkpoint_every", int, "also save `last` every N steps"),
    "seed": ("seed", int, "seed for split, shuffling, augmentation and init"),
    "threads": ("threads", int, "torch threads (default: usable cores)"),
    "device": ("device", str, "auto | cpu | cuda"),
    "runs_dir": ("runs_dir", str, "parent folder of run folders (default ./runs)"),
    "name": ("name", str, "run name (default <model>-<dataset>)"),
}
BOOL_FLAGS = {
    "augment": "random shifts/rotations per batch",
    "augment_flip": "with --augment: mirror half the images left-right (clothes, not digits)",
    "nesterov": "Nesterov momentum (sgd)",
    "early_stopping": "stop when --monitor stops improving",
    "restore_best_weights": "end with the best weights (default on)",
    "deterministic": "deterministic algorithms (bit-repeatable CPU runs)",
    "channels_last": "NHWC memory format",
    "bf16": "bfloat16 autocast when the hardware supports it",
    "drop_last": "drop the last incomplete batch of each epoch",
    "whiten": "start the first conv as a PCA whitening of training patches",
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a model (Keras-style fit with checkpoints)")
    p.add_argument("--config", metavar="YAML", help="YAML file of TrainConfig keys")
    from cnnlab.config import RECIPES  # no torch: cheap at parser build time

    p.add_argument(
        "--recipe", help=f"named preset: {' | '.join(RECIPES)} (flags and --config override it)"
    )
    for flag, (_, typ, hlp) in TRAIN_FLAGS.items():
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, default=None, help=hlp)
    for flag, hlp in BOOL_FLAGS.items():
        opt = "--" + flag.replace("_", "-")
        p.add_argument(opt, dest=flag, action=argparse.BooleanOptionalAction, help=hlp)
    p.add_argument("--resume", metavar="RUN", help="runs/NAME/version_N, runs/NAME or auto")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="data-parallel: launch N processes with torchrun (DDP; --batch-size stays global)",
    )
    _output_flags(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("evaluate", help="test-set loss, accuracy, per-class metrics")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the run's)")
    p.add_argument("--data-dir", help="folder searched first for dataset files")
    p.add_argument("--which", default="best", help="best | last checkpoint of a run folder")
    p.add_argument("--out", help="folder for pictures and metrics (default RUN/evaluation)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument(
        "--fast",
        action="store_true",
        help="bf16 + channels_last through a fused TorchScript graph (CPU; ~2.7x eager bf16)",
    )
    p.add_argument("--threads", type=int)
    _output_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("predict", help="classify your own images")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--show", metavar="PNG", help="save what the network saw beside the input")
    p.add_argument("--csv", metavar="CSV", help="write one row per image")
    p.add_argument("--style", choices=("mnist", "fashion", "plain"), help="preprocessing")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("reproduce", help="re-run the course notebooks' experiments")
    p.add_argument("what", choices=("seeds",), help="seeds: the notebooks in ../shared/seeds")
    p.add_argument("--quick", action="store_true", help="small subsets: minutes, not an hour")
    p.add_argument("--only", help="comma-separated row names (tutorial,model_a,...)")
    p.add_argument("--runs-dir", default="runs/reproduce")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    _output_flags(p)
    p.set_defaults(func=cmd_reproduce)

    p = subparsers.add_parser("demo", help="train, evaluate and predict in a few minutes")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def _output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="last stdout line: a JSON summary")


def train_config_from_args(args: argparse.Namespace):
    """Defaults < --recipe < --config YAML < flags."""
    from cnnlab.config import resolve_config

    flags = {key: getattr(args, flag) for flag, (key, _, _) in TRAIN_FLAGS.items()}
    flags.update({flag: getattr(args, flag) for flag in BOOL_FLAGS})
    return resolve_config(recipe=args.recipe, yaml_path=args.config, **flags)


def cmd_train(args: argparse.Namespace) -> int:
    from cnnlab.engine import distributed as ddp
    from cnnlab.engine import fit
    from cnnlab.engine.loop import TrainingInterrupted
    from cnnlab.engine.runs import find_resume_dir
    from cnnlab.viz.training import CurvesCallback

    # DDP (engine/distributed.py): --nproc re-executes this command under torchrun; under
    # torchrun every rank trains, rank 0 alone prints and writes.
    if args.nproc and args.nproc > 1 and not ddp.launched_by_torchrun():
        ddp.exec_torchrun(args.nproc, sys.argv[1:])
    config = train_config_from_args(args)
    main = ddp.env_rank() == 0
    resume = None
    if args.resume:
        resume = find_resume_dir(args.resume, config.runs_dir, config.run_name)
        if main:
            _say(args, f"resuming {resume}")
    progress = None if (args.quiet or args.json or not main) else TqdmProgress()
    if ddp.launched_by_torchrun():
        result = ddp.fit_distributed(
            config,
            progress=progress,
            callbacks=[CurvesCallback()],
            resume=resume,
            on_start=None if args.quiet else lambda info: _say(args, ddp.summary_line(info)),
        )
        if not main:
            return 0
    else:
        try:
            result = fit(config, progress=progress, callbacks=[CurvesCallback()], resume=resume)
        except TrainingInterrupted as stop:  # Ctrl-C or SIGTERM: `last` is saved, say how to go on
            how = "terminated (SIGTERM)" if stop.signal == signal.SIGTERM else "interrupted"
            sys.stderr.write(
                f"cnnlab: {how}: {stop}\n"
                f"cnnlab: resume with: cnnlab train --resume {stop.run_dir}\n"
            )
            return 128 + stop.signal  # what a shell reports for the signal: 130, 143
    last = result.history[-1] if result.history else {}
    summary = {
        "run_dir": str(result.run_dir),
        "epochs": round(result.epochs, 4),
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 3),
        "val_accuracy": last.get("val_accuracy"),
        "val_loss": last.get("val_loss"),
        "train_loss": last.get("train_loss"),
        "best": {k: result.best_metrics.get(k) for k in ("step", "val_loss", "val_accuracy")},
        "stopped_early": result.stopped_early,
        "bf16": result.bf16,
        "images_per_second": round(result.images / max(result.train_seconds, 1e-9), 1),
        "processes": int(os.environ.get("WORLD_SIZE", "1")),  # DDP world size (torchrun)
    }
    if not args.quiet:
        acc = summary["val_accuracy"]
        acc_text = f"val_accuracy {acc:.4f}, " if acc is not None else ""
        _say(
            args,
            f"trained {summary['epochs']:g} epochs ({result.steps} steps) in "
            f"{result.train_seconds:.1f} s: {acc_text}{summary['images_per_second']:.0f} img/s"
            + (" (stopped early, best weights restored)" if result.stopped_early else ""),
        )
        _say(args, f"run folder: {result.run_dir}")
    if args.json:
        print(json.dumps(summary))
    return 0


def _say(args: argparse.Namespace, text: str) -> None:
    """Human output: stdout normally, stderr under --json (stdout's last line is the JSON)."""
    print(text, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


class TqdmProgress:
    """fit() progress callback: one tqdm bar per epoch, a line per evaluation."""

    def __init__(self, every: int = 5):
        self.every, self.bar, self.images, self.t0 = every, None, 0, 0.0
        self.loss = self.acc = None

    def on_train_begin(self, state: Any) -> None: ...

    def on_epoch_begin(self, state: Any) -> None:
        import time

        from tqdm import tqdm

        self.bar = tqdm(
            total=state.steps_per_epoch,
            initial=state.batch_in_epoch,
            desc=f"epoch {state.epoch + 1}",
            unit="batch",
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.images, self.t0 = 0, time.perf_counter()

    def on_batch_end(self, state: Any, logs: dict[str, Any]) -> None:
        import time

        a = 0.1
        self.loss = logs["loss"] if self.loss is None else (1 - a) * self.loss + a * logs["loss"]
        acc = logs["accuracy"]
        self.acc = acc if self.acc is None else (1 - a) * self.acc + a * acc
        self.images += logs["images"]
        self.bar.update(1)
        if state.step % self.every == 0:
            rate = self.images / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.set_postfix(
                loss=f"{self.loss:.4f}", acc=f"{self.acc:.3f}", img_s=f"{rate:.0f}"
            )

    def on_evaluate(self, state: Any, row: dict[str, Any]) -> None:
        from tqdm import tqdm

        parts = [f"epoch {row['epoch']:g}", f"step {row['step']}"]
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            if row.get(key) is not None:
                parts.append(f"{key} {row[key]:.4f}")
        parts.append(f"lr {row['lr']:.3g}")
        tqdm.write("  ".join(parts), file=sys.stdout)

    def on_epoch_end(self, state: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_train_end(self, state: Any) -> None:
        self.on_epoch_end(state)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.engine.device import set_threads
    from cnnlab.engine.report import evaluate_checkpoint
    from cnnlab.viz.training import plot_confusion, plot_worst_errors

    set_threads(args.threads)
    report = evaluate_checkpoint(
        args.run, dataset=args.dataset, data_dir=args.data_dir, which=args.which,
        out=args.out, batch_size=args.batch_size, fast=args.fast,
    )  # fmt: skip
    res = report.result
    probs = res.logits.softmax(1).numpy()
    title = f"{report.model_name} on {report.dataset_label}: accuracy {res.accuracy:.2%}"
    plot_confusion(res.confusion, report.classes, report.out / "confusion.png", title)
    plot_worst_errors(
        report.images, probs, res.labels.numpy(), report.classes, report.out / "worst_errors.png"
    )
    report.write_json()
    if not args.quiet:
        _say(args, report.text())
        _say(args, f"pictures: {report.out / 'confusion.png'}, {report.out / 'worst_errors.png'}")
    if args.json:
        print(json.dumps(report.summary()))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnlab.engine.device import set_threads
    from cnnlab.predict import Predictor, collect_images, write_csv

    set_threads(args.threads)
    predictor = Predictor.load(args.run)
    if args.style:
        predictor.style = args.style
    paths = collect_images(args.images)
    preds = predictor.predict_paths(paths)
    if args.csv:
        write_csv(args.csv, paths, preds, predictor.classes)
    if args.show:
        _show_inputs(args.show, paths, predictor, preds)
    if args.json:
        print(
            json.dumps(
                [{"path": str(p), **pr.to_dict()} for p, pr in zip(paths, preds, strict=False)]
            )
        )
        return 0
    for path, pred in zip(paths, preds, strict=False):
        top = pred.top(args.top_k)
        text = ", ".join(f"{name} {prob:.1%}" for _, name, prob in top)
        print(f"{path}: {pred.class_name} ({pred.probability:.1%})   top-{args.top_k}: {text}")
    for extra, label in ((args.csv, "csv"), (args.show, "picture")):
        if extra:
            print(f"{label}: {extra}")
    return 0


def _show_inputs(out: str, paths: list, predictor: Any, preds: list) -> None:
    from cnnlab.images import read_image, to_rgb_array
    from cnnlab.viz.training import plot_inputs

    images = [read_image(p) for p in paths[:24]]
    titles = [
        f"{p.name}: {pr.class_name} ({pr.probability:.0%})"
        for p, pr in zip(paths, preds, strict=False)
    ]
    plot_inputs(
        [to_rgb_array(im) for im in images], [predictor.prepare(im) for im in images], titles, out
    )


def cmd_reproduce(args: argparse.Namespace) -> int:
    from cnnlab.engine.reproduce import format_table, run_seeds

    only = args.only.split(",") if args.only else None
    progress = None if (args.quiet or args.json) else TqdmProgress()

    def report(row: dict[str, Any]) -> None:
        if not args.quiet:
            _say(args, f"{row['name']}: {row['measured']} (notebook: {row['reported']})")

    rows = run_seeds(
        quick=args.quick, only=only, runs_dir=args.runs_dir, data_dir=args.data_dir,
        threads=args.threads, progress=progress, on_row=report,
    )  # fmt: skip
    if not args.quiet:
        _say(args, format_table(rows))
    if args.json:
        print(json.dumps(rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Train tutorial_cnn briefly, evaluate it, predict a few test digits, say where it all is."""
    from cnnlab.config import resolve_config
    from cnnlab.data import locate_dataset
    from cnnlab.engine import fit
    from cnnlab.errors import DataError
    from cnnlab.viz.training import CurvesCallback

    dataset, limit = "mnist", 20_000
    try:
        locate_dataset("mnist", data_dir=args.data_dir, download=True)
    except DataError as exc:
        print(f"MNIST could not be found or downloaded ({exc}).")
        print("Falling back to scikit-learn's 8x8 digits (upsampled to 28x28) for the demo.")
        dataset, limit = "digits", None
    # digits has 1,437 training images: smaller batches and more epochs for enough steps
    small = {} if dataset == "mnist" else {"batch_size": 32, "lr": 0.002}
    config = resolve_config(
        recipe="notebook", dataset=dataset, data_dir=args.data_dir, limit_train=limit,
        epochs=2 if dataset == "mnist" else 10, runs_dir=args.runs_dir, name="demo",
        threads=args.threads, **small,
    )  # fmt: skip
    subset = f"the first {limit:,} training images" if limit else "all training images"
    print(f"1/3 training tutorial_cnn on {dataset} ({subset}, {config.epochs} epochs, adam)")
    progress = None if args.quiet else TqdmProgress()
    result = fit(config, progress=progress, callbacks=[CurvesCallback()])
    print(f"    {result.train_seconds:.1f} s of training; run folder {result.run_dir}")
    ev = argparse.Namespace(
        run=str(result.run_dir), dataset=None, data_dir=args.data_dir, which="best", out=None,
        batch_size=1000, threads=args.threads, quiet=True, json=False,
    )  # fmt: skip
    print("2/3 evaluating on the test set")
    cmd_evaluate(ev)
    metrics = json.loads((result.run_dir / "evaluation" / "metrics.json").read_text())
    print(f"    test accuracy {metrics['accuracy']:.2%} on {metrics['images']} images")
    print("3/3 predicting test digits saved as PNG files (dark ink on white, like a drawing)")
    folder = _demo_digits(result.run_dir / "demo_digits", dataset, args.data_dir)
    pr = argparse.Namespace(
        run=str(result.run_dir), images=[str(folder)], top_k=3, csv=None, style=None,
        show=str(result.run_dir / "demo_predictions.png"), threads=args.threads, json=False,
    )  # fmt: skip
    cmd_predict(pr)
    print("\nwhere things are:")
    for label, path in (
        ("run folder", result.run_dir),
        ("learning curves", result.run_dir / "curves.png"),
        ("confusion matrix", result.run_dir / "evaluation" / "confusion.png"),
        ("worst errors", result.run_dir / "evaluation" / "worst_errors.png"),
        ("what the network saw", result.run_dir / "demo_predictions.png"),
        ("best checkpoint", result.run_dir / "checkpoints" / "best.pt"),
    ):
        print(f"  {label:<22}{path}")
    print(f"next: cnnlab predict {result.run_dir} your_digit.png --show seen.png")
    return 0


def _demo_digits(folder: Path, dataset: str, data_dir: str | None, n: int = 6) -> Path:
    """Write ``n`` test digits as dark-on-white PNGs (as a user would draw them)."""
    from cnnlab.engine.data_setup import load_split
    from cnnlab.images import save_image

    test = load_split(dataset, "test", data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        digit = 1.0 - test.images[i, 0].numpy() / 255.0
        save_image(folder / f"test{i}_true_{int(test.labels[i])}.png", digit)
    return folder
