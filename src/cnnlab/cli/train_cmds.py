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


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a model (Keras-style fit with checkpoints)")
    p.add_argument("--config", metavar="YAML", help="YAML file of TrainConfig keys")
    from cnnlab.config import RECIPES  # no torch: cheap at parser build time

    p.add_argument(
        "--recipe", help=f"named preset: {' | '.join(RECIPES)} (flags and --config override it)"
    )
    add_config_flags(p)
    p.add_argument("--resume", metavar="RUN", help="runs/NAME/version_N, runs/NAME or auto")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="data-parallel: launch N processes with torchrun (DDP; --batch-size stays global)",
    )
    p.add_argument("--live", nargs="?", const=8001, type=int, metavar="PORT",
                   help="watch it train: curves and feature maps at http://127.0.0.1:PORT/train "
                        "(default port 8001)")  # fmt: skip
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
    p.add_argument(
        "--force",
        action="store_true",
        help="evaluate even when the dataset's class names differ from the model's",
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

    p = subparsers.add_parser(
        "demo", help="train the fast recipe to 99%% on MNIST, evaluate, predict, write a report"
    )
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="IMAGE",
        help="also predict this image of yours (repeatable)",
    )
    p.add_argument(
        "--dataset",
        default="mnist",
        help="mnist (default; digits when MNIST cannot be found) | digits",
    )
    p.add_argument("--max-steps", type=int, help="optimiser steps (default: the recipe's)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)


def _output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="last stdout line: a JSON summary")


def config_flags() -> list[tuple[str, Any]]:
    """(flag dest, dataclass field) for every TrainConfig field that has a command-line flag."""
    import dataclasses

    from cnnlab.config import TrainConfig

    return [(f.name, f) for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)]


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, generated from the field's type, help and valid values."""
    import typing

    from cnnlab.config import TrainConfig, _base, field_help

    hints = typing.get_type_hints(TrainConfig)
    group = p.add_argument_group("training options (also YAML keys of --config)")
    for name, f in config_flags():
        opt, typ = "--" + name.replace("_", "-"), _base(hints[name])
        if typ is bool:
            group.add_argument(opt, dest=name, action=argparse.BooleanOptionalAction,
                               help=field_help(f))  # fmt: skip
        else:
            meta = "|".join(f.metadata["choices"]) if f.metadata.get("choices") else None
            group.add_argument(opt, dest=name, type=typ, default=None, metavar=meta,
                               help=field_help(f))  # fmt: skip


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The config flags given on the command line (every flag defaults to None)."""
    return {
        name: getattr(args, name) for name, _ in config_flags() if getattr(args, name) is not None
    }


def train_config_from_args(args: argparse.Namespace):
    """Defaults < --recipe < --config YAML < flags."""
    from cnnlab.config import resolve_config

    return resolve_config(recipe=args.recipe, yaml_path=args.config, **given_flags(args))


def resume_from_args(args: argparse.Namespace):
    """(run folder, config) for ``--resume``: its saved config plus the flags that may change.

    The recipe, YAML file and flags given are compared with the run's config: the same command
    line with ``--resume`` added continues the run; a different value is refused by name.
    """
    from cnnlab.config import RECIPES, TrainConfig, read_yaml
    from cnnlab.engine.runs import find_resume_dir, resume_config
    from cnnlab.errors import ConfigError

    given: dict[str, Any] = {}
    if args.recipe:
        if args.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {args.recipe!r}; choose from {', '.join(RECIPES)}")
        given.update(RECIPES[args.recipe], recipe=args.recipe)
    if args.config:
        given.update(read_yaml(args.config))
    given.update(given_flags(args))
    where = TrainConfig(
        **{k: given[k] for k in ("model", "dataset", "name", "runs_dir") if k in given}
    )
    run_dir = find_resume_dir(args.resume, where.runs_dir, where.run_name)
    return run_dir, resume_config(run_dir, given)


def cmd_train(args: argparse.Namespace) -> int:
    from cnnlab.engine import distributed as ddp
    from cnnlab.engine import fit
    from cnnlab.engine.callbacks import ProgressBar
    from cnnlab.engine.loop import TrainingInterrupted
    from cnnlab.viz.curves_png import CurvesCallback

    # DDP (engine/distributed.py): --nproc re-executes this command under torchrun; under
    # torchrun every rank trains, rank 0 alone prints and writes.
    under_torchrun = ddp.launched_by_torchrun()
    if args.nproc and args.nproc > 1 and not under_torchrun:
        ddp.exec_torchrun(args.nproc, sys.argv[1:])
    main = ddp.env_rank() == 0
    resume, config = resume_from_args(args) if args.resume else (None, train_config_from_args(args))
    if resume is not None and main:
        _say(args, f"resuming {resume}")
    progress = None if (args.quiet or args.json or not main) else ProgressBar()
    callbacks = [CurvesCallback()]
    if args.live is not None and main:
        from cnnlab.serve.live import LiveServer, LiveTraining

        server = LiveServer(port=args.live).start()
        _say(args, f"watch it train at {server.url}")
        callbacks.append(LiveTraining(server))
    try:
        if under_torchrun:
            result = ddp.fit_distributed(
                config,
                progress=progress,
                callbacks=callbacks,
                resume=resume,
                on_start=None if args.quiet else lambda info: _say(args, ddp.summary_line(info)),
            )
            if not main:
                ddp.end_worker(0)
        else:
            result = fit(config, progress=progress, callbacks=callbacks, resume=resume)
    except TrainingInterrupted as stop:  # Ctrl-C or SIGTERM: `last` is saved, say how to go on
        code = 128 + stop.signal  # what a shell reports for the signal: 130, 143
        if main:
            how = "terminated (SIGTERM)" if stop.signal == signal.SIGTERM else "interrupted"
            sys.stderr.write(
                f"cnnlab: {how}: {stop}\n"
                f"cnnlab: resume with: cnnlab train --resume {stop.run_dir}\n"
            )
        if under_torchrun:
            ddp.end_worker(code)
        return code
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
    if under_torchrun:
        ddp.end_worker(0)
    return 0


def _say(args: argparse.Namespace, text: str) -> None:
    """Human output: stdout normally, stderr under --json (stdout's last line is the JSON)."""
    print(text, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.engine.device import set_threads
    from cnnlab.fileio import atomic_write_text
    from cnnlab.run import load
    from cnnlab.viz import save_figure

    set_threads(args.threads)
    run = load(args.run, which=args.which)
    ev = run.evaluate(args.dataset, data_dir=args.data_dir, batch_size=args.batch_size,
                      fast=args.fast, force=args.force)  # fmt: skip
    out = _evaluation_dir(run.path, args.out)
    save_figure(run.plot_confusion(ev), out / "confusion.png")
    save_figure(run.plot_top_losses(16, ev), out / "worst_errors.png")
    summary = {
        "checkpoint": str(run.path),
        "dataset": ev.dataset,
        "images": len(ev.labels),
        "accuracy": ev.accuracy,
        "loss": ev.loss,
        "per_class": ev.per_class,
        "out": str(out),
    }
    data = {**summary, "confusion": ev.confusion.tolist()}
    atomic_write_text(out / "metrics.json", json.dumps(data, indent=1))
    if args.quiet:  # the one number asked for, without the table
        _say(args, f"accuracy {ev.accuracy:.4f} on {len(ev.labels)} {ev.dataset} images")
    else:
        _say(args, f"{run.name} on {ev.text()}")
        _say(args, f"pictures: {out / 'confusion.png'}, {out / 'worst_errors.png'}")
    if args.json:
        print(json.dumps(summary))
    return 0


def _evaluation_dir(checkpoint: Path, out: str | None) -> Path:
    """``--out``, else ``<run>/evaluation`` (or ``<file>-evaluation`` beside a lone file)."""
    if out is not None:
        folder = Path(out)
    elif checkpoint.parent.name == "checkpoints":
        folder = checkpoint.parent.parent / "evaluation"
    else:
        folder = checkpoint.parent / f"{checkpoint.stem}-evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnlab.engine.device import set_threads
    from cnnlab.predict import collect_images, write_csv
    from cnnlab.run import load

    set_threads(args.threads)
    run = load(args.run, style=args.style)
    run.set_threads(args.threads)
    paths = collect_images(args.images)
    preds = run.predict(paths)
    if args.csv:
        write_csv(args.csv, paths, preds, run.classes)
    if args.show:
        _show_inputs(args.show, paths, run, preds)
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


def _show_inputs(out: str, paths: list, run: Any, preds: list) -> None:
    from cnnlab.images import read_image, to_rgb_array
    from cnnlab.viz import save_figure
    from cnnlab.viz.training import plot_inputs

    images = [read_image(p) for p in paths[:24]]
    titles = [
        f"{p.name}: {pr.class_name} ({pr.probability:.0%})"
        for p, pr in zip(paths, preds, strict=False)
    ]
    fig = plot_inputs([to_rgb_array(im) for im in images], [run.prepare(im) for im in images],
                      titles)  # fmt: skip
    save_figure(fig, out)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from cnnlab.engine.callbacks import ProgressBar
    from cnnlab.engine.reproduce import format_table, run_seeds

    only = args.only.split(",") if args.only else None
    progress = None if (args.quiet or args.json) else ProgressBar()

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
    """The main job in under a minute: train, evaluate, predict, report, say where things are."""
    from cnnlab.config import resolve_config
    from cnnlab.data import locate_dataset
    from cnnlab.engine import fit
    from cnnlab.engine.callbacks import ProgressBar
    from cnnlab.engine.validate import first_line
    from cnnlab.errors import DataError
    from cnnlab.report import write_report
    from cnnlab.viz import save_figure
    from cnnlab.viz.curves_png import CurvesCallback

    dataset = args.dataset
    if dataset not in ("mnist", "digits"):
        raise DataError(f"demo runs on mnist or digits, not {dataset!r}")
    if dataset == "mnist":
        try:
            locate_dataset("mnist", data_dir=args.data_dir, download=True)
        except DataError as exc:
            why = first_line(exc, 120)
            print(f"MNIST not found and not downloadable ({why}): using digits")
            dataset = "digits"
    config = resolve_config(
        recipe="fast", dataset=dataset, data_dir=args.data_dir, runs_dir=args.runs_dir,
        name=f"demo-{dataset}", threads=args.threads, max_steps=args.max_steps,
    )  # fmt: skip
    steps = f"{config.max_steps} steps"
    print(f"1/4 training {config.model} on {dataset} with the fast recipe ({steps})")
    run = fit(config, progress=None if args.quiet else ProgressBar(), callbacks=[CurvesCallback()])
    folder = run.run_dir
    print(f"    {run.train_seconds:.1f} s of training, {run.steps} steps")

    print("2/4 evaluating on the test set")
    ev = run.evaluate(data_dir=args.data_dir)
    evaluation = folder / "evaluation"
    evaluation.mkdir(exist_ok=True)
    save_figure(run.plot_confusion(ev), evaluation / "confusion.png")
    print(f"    test accuracy {ev.accuracy:.2%} on {len(ev.labels):,} {ev.dataset} images")

    print("3/4 predicting digits drawn as dark ink on white paper")
    paths = [*sorted(_demo_digits(folder / "demo_digits", dataset, args.data_dir).iterdir()),
             *map(Path, args.image)]  # fmt: skip
    for path, pred in zip(paths, run.predict(paths), strict=True):
        print(f"    {path.name:<24} -> {pred.class_name} ({pred.probability:.1%})")

    print("4/4 writing the HTML report")
    report_path = write_report(run, out=folder / "report.html", data_dir=args.data_dir)
    print("\nwhere things are:")
    for label, path in (
        ("run folder", folder),
        ("report (open in a browser)", report_path),
        ("learning curves", folder / "curves.png"),
        ("confusion matrix", evaluation / "confusion.png"),
        ("best checkpoint", folder / "checkpoints" / "best.pt"),
    ):
        print(f"  {label:<28}{path}")
    print(f"next: cnnlab predict {folder} your_digit.png")
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
