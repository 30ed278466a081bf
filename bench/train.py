"""Training speed: the notebooks' loop vs cnnlab's default path vs cnnlab's fast recipes.

One invocation runs every contender for every seed, alternating (seed-major order), each run in
its own subprocess so peak memory (ru_maxrss) is per run. Test accuracy on the real 10,000-image
test set is measured every 1/4 epoch (--probes-per-epoch) with the training clock stopped.

    python bench/train.py                         # MNIST, 3 seeds (writes bench/results/train.*)
    python bench/train.py --dataset fashion-mnist # Fashion-MNIST with the best-fashion recipe
    python bench/train.py --seeds 1 --quick       # a fast check
    python bench/train.py --only fast --seeds 10 --first-seed 100  # seeds not used for tuning
    python bench/train.py --threads 1 --slow-epochs 2  # on a busy shared machine
    python bench/train.py --only notebook fast --seeds 10 --first-seed 1000 --slow-seeds 3
                                                  # fast on 10 seeds beside the notebook's loop

Contenders (MNIST):
    notebook        notebook 000's loop: per-sample PIL -> ToTensor Dataset, DataLoader(150,
                    shuffle), Adam(), default threads; stops at 99.0% (or --slow-epochs)
    cnnlab-default  `cnnlab train --model tutorial_cnn --dataset mnist` through cnnlab.fit
    tutorial-fast   `cnnlab train --recipe tutorial-fast`: the tutorial net with the tuned loop
    fast            `cnnlab train --recipe fast`: cnnlab's fastest recipe (speednet)
    fast-1epoch     an earlier fast recipe (speednet, one epoch, no whitening), for comparison
    fast-300        the fast recipe until 2026-11-30 (speednet 32-64, 300 steps), for comparison
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import cpu_model, cpuinfo, peak_rss_mib  # bench/ is on the path
from cnnlab.config import RECIPES

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = {"mnist": (0.985, 0.99, 0.992), "fashion-mnist": (0.92, 0.935, 0.945)}
CONTENDERS = {
    "mnist": ("notebook", "cnnlab-default", "tutorial-fast", "fast"),
    "fashion-mnist": ("notebook", "cnnlab-default", "best-fashion", "best-fashion-long"),
}
SLOW = ("notebook", "cnnlab-default")  # the references: --slow-seeds limits their seeds
COMMANDS = {
    "notebook": "notebook 000 loop (bench/train.py)",
    "cnnlab-default": "cnnlab train --dataset {ds}",
    "tutorial-fast": "cnnlab train --recipe tutorial-fast --dataset {ds}",
    "fast": "cnnlab train --recipe fast --dataset {ds}",
    "best-fashion": "cnnlab train --recipe best-fashion --dataset {ds}",
    "best-fashion-long": "cnnlab train --recipe best-fashion-long --dataset {ds}",
    "best-mnist": "cnnlab train --recipe best-mnist --dataset {ds}",
    "fast-1epoch": "cnnlab train --config fast-1epoch.yaml --dataset {ds} (*)",
    "fast-300": "cnnlab train --config fast-300.yaml --dataset {ds} (**)",
}


# Earlier versions of the `fast` recipe, run as configs (`cnnlab train --config FILE.yaml`);
# EARLIER_FAST_NOTES says what each was (the table's footnotes).
EARLIER_FAST = {
    "fast-1epoch": {
        **{k: v for k, v in RECIPES["fast"].items() if k not in ("whiten", "max_steps")},
        "model_kwargs": {},
        "lr": 0.01,
        "label_smoothing": 0.1,
    },
    "fast-300": {**RECIPES["fast"], "model_kwargs": {}, "lr": 0.013, "max_steps": 300},
}
EARLIER_FAST_NOTES = {
    "fast-1epoch": "(*) fast-1epoch.yaml: `EARLIER_FAST` in bench/train.py, the `fast` recipe "
    "before whitening (speednet 32-64, one epoch, Adam lr 0.01, label smoothing 0.1).",
    "fast-300": "(**) fast-300.yaml: `EARLIER_FAST` in bench/train.py, the `fast` recipe until "
    "2026-11-30 (speednet 32-64, whitened, 300 steps, Adam lr 0.013).",
}


# ---------------------------------------------------------------- hardware


def cpu_peak() -> dict:
    """fp32 peak FLOP/s = cores x FMA units x vector lanes x 2 (mul+add) x clock, from the CPU."""
    info = cpuinfo()
    flags, mhz = set(info.get("flags", "").split()), float(info.get("cpu MHz", 0.0))
    vendor, family = info.get("vendor_id", ""), int(info.get("cpu family", 0))
    cores = len(os.sched_getaffinity(0))
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    # Intel server cores with AVX-512 have 2 FMA units (ports 0 and 5); cpuinfo does not say.
    fma_units = 2 if "avx512f" in flags else 2 if "fma" in flags else 1
    isa = "AVX-512" if lanes == 16 else "AVX2"
    if vendor == "AuthenticAMD" and family == 25 and lanes == 16:
        lanes, isa = 8, "AVX-512 on Zen 4's 256-bit FMA units"  # 2 x 256 bit per 512-bit op
    peak = cores * fma_units * lanes * 2 * mhz * 1e6
    text = (
        f"{cores} cores x {fma_units} FMA units x {lanes} fp32 lanes ({isa})"
        f" x 2 FLOP/FMA x {mhz / 1000:.2f} GHz = {peak / 1e9:.0f} GFLOP/s"
    )
    amx = "amx_bf16" in flags
    return {
        "model": cpu_model(),
        "cores": cores,
        "fma_units": fma_units,
        "lanes": lanes,
        "ghz": mhz / 1000,
        "peak_flops": peak,
        "text": text,
        "amx_bf16": amx,
    }


def flops_per_image(model_name: str, model_kwargs: dict | None = None) -> float:
    """Training FLOPs per image: 2 FLOPs per mult-add x 3 (forward + two backward products)."""
    from cnnlab.models import create_model
    from cnnlab.models.summary import summary

    model = create_model(model_name, **(model_kwargs or {}))
    return 2.0 * summary(model, input_size=(1, 28, 28)).total_mult_adds * 3


# ---------------------------------------------------------------- shared evaluation


def test_accuracy(model, x, y, batch: int = 1000, tta: bool = False) -> float:
    """fp32 accuracy on already-normalised test images, eval mode, inference_mode (clock off);
    ``tta``: each image's logits averaged with its mirror's, as the recipe evaluates."""
    from cnnlab.engine.evaluate import infer

    logits = infer(model, x, batch_size=batch, tta=tta)
    return int((logits.argmax(1) == y).sum()) / len(x)


def probe_points(steps_per_epoch: int, per_epoch: int = 4) -> set[int]:
    """Batch positions within an epoch (1-based) at which to evaluate: ``per_epoch`` evenly
    spaced points (4: every 1/4 epoch; 0: none, so cnnlab runs are probed after the last step)."""
    return {max(1, round(steps_per_epoch * j / per_epoch)) for j in range(1, per_epoch + 1)}


# ---------------------------------------------------------------- contender (a): the notebook


def run_notebook(dataset: str, seed: int, max_epochs: int, stop_at: float, probes: int = 4) -> dict:
    """Notebook 000's cells, with torchvision's per-sample MNIST + ToTensor done the same way."""
    import torch
    import torch.nn as nn
    import torch.optim as optim
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    from cnnlab.data import load_dataset

    class PerSampleMNIST(Dataset):  # what torchvision.datasets.MNIST(transform=ToTensor()) does
        def __init__(self, images, labels):
            self.data, self.targets = images[:, 0], labels

        def __len__(self):
            return len(self.targets)

        def __getitem__(self, index):
            img, target = self.data[index], int(self.targets[index])
            img = Image.fromarray(img.numpy(), mode="L")
            arr = torch.from_numpy(np.array(img, np.uint8, copy=True))  # ToTensor from here
            x = arr.view(28, 28, 1).permute(2, 0, 1).contiguous().float().div(255)
            return x, target

    class Net(nn.Module):  # notebook 000, verbatim
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels=1, out_channels=32, kernel_size=3, padding=0)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
            self.conv2 = nn.Conv2d(in_channels=32, out_channels=64, kernel_size=3, padding=0)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
            self.conv3 = nn.Conv2d(in_channels=64, out_channels=64, kernel_size=3, padding=0)
            self.relu3 = nn.ReLU()
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(576, 64)
            self.relu4 = nn.ReLU()
            self.dropout = nn.Dropout(0.5)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = self.relu3(self.conv3(x))
            x = self.flatten(x)
            x = self.relu4(self.fc1(x))
            x = self.dropout(x)
            return self.fc2(x)

    torch.manual_seed(seed)
    train = load_dataset(dataset, "train")
    test = load_dataset(dataset, "test")
    x_test, y_test = test.images.float().div(255), test.labels
    model = Net()
    optimizer = optim.Adam(model.parameters())
    criterion = nn.CrossEntropyLoss()
    train_loader = DataLoader(
        PerSampleMNIST(train.images, train.labels), batch_size=150, shuffle=True
    )
    points = probe_points(len(train_loader), max(1, probes))
    curve, clock, cpu, images = [], 0.0, 0.0, 0
    for epoch in range(max_epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        for batch_idx, (data, target) in enumerate(train_loader):
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            images += len(target)
            if batch_idx % 100 == 0:
                loss.item()  # the notebook prints this
            if batch_idx + 1 in points:
                clock += time.perf_counter() - t0
                cpu += time.process_time() - c0
                acc = test_accuracy(model, x_test, y_test)
                point = round(epoch + (batch_idx + 1) / len(train_loader), 3)
                curve.append([point, clock, acc, cpu])
                if acc >= stop_at:
                    return _summary("tutorial_cnn", curve, clock, images, torch.get_num_threads())
                t0, c0 = time.perf_counter(), time.process_time()
    return _summary("tutorial_cnn", curve, clock, images, torch.get_num_threads())


# ---------------------------------------------------------------- contenders (b), (c): cnnlab.fit


def run_cnnlab(
    dataset: str, seed: int, recipe: str | None, overrides: dict, probes: int = 4
) -> dict:
    """Train through cnnlab.fit (the code behind `cnnlab train`) with a test-set probe callback."""
    import torch

    from cnnlab.config import resolve_config
    from cnnlab.data import load_dataset
    from cnnlab.engine import fit
    from cnnlab.engine.callbacks import Callback

    test = load_dataset(dataset, "test")

    class TestProbe(Callback):
        """Test accuracy at the probe points and after the last step; its own time is
        subtracted from train_seconds."""

        def __init__(self) -> None:
            self.curve: list[list[float]] = []
            self.probe_seconds = self.probe_cpu = 0.0

        def on_train_begin(self, state) -> None:
            self.points = probe_points(state.steps_per_epoch, probes)
            self.x = state.data.normalizer(test.images)
            self.cpu0 = time.process_time()

        def on_batch_end(self, state, logs) -> None:
            if state.batch_in_epoch not in self.points and state.step < state.total_steps:
                return  # a 1/4-epoch point or the last step
            t0, c0 = time.perf_counter(), time.process_time()
            cpu = c0 - self.cpu0 - self.probe_cpu  # CPU seconds of all threads, probes excluded
            acc = test_accuracy(state.raw_model, self.x, test.labels, tta=state.config.tta)
            clock = state.train_seconds - self.probe_seconds
            point = round(state.step / state.steps_per_epoch, 3)
            self.curve.append([point, clock, acc, cpu])
            self.probe_seconds += time.perf_counter() - t0
            self.probe_cpu += time.process_time() - c0

    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as runs:
        config = resolve_config(recipe, dataset=dataset, seed=seed, runs_dir=runs, **overrides)
        probe = TestProbe()
        result = fit(config, callbacks=[probe])
        # what a user runs at test time (run.evaluate: flip TTA when the recipe says so), timed
        t0 = time.perf_counter()
        test_result = result.evaluate()
        test_seconds = time.perf_counter() - t0
    seconds = result.train_seconds - probe.probe_seconds
    out = _summary(
        config.model,
        probe.curve,
        seconds,
        result.images,
        torch.get_num_threads(),
        config.model_kwargs,
    )
    out.update(
        test_seconds=test_seconds,
        test_accuracy=test_result.accuracy,
        tta=config.tta,
        bf16=result.bf16,
        channels_last=config.channels_last,
        epochs=result.epochs,
        config={k: v for k, v in config.to_dict().items() if k != "runs_dir"},
    )
    return out


def _summary(model, curve, seconds, images, threads, model_kwargs=None) -> dict:
    flops = flops_per_image(model, model_kwargs)
    img_s = images / max(seconds, 1e-9)
    peak_rss = peak_rss_mib()["self"]
    return {
        "model": model,
        "curve": curve,
        "train_seconds": seconds,
        "images": images,
        "images_per_second": img_s,
        "threads": threads,
        "peak_rss_mib": peak_rss,
        "flops_per_image": flops,
        "achieved_flops": img_s * flops,
        "final_accuracy": curve[-1][2] if curve else None,
        "cpu_seconds": curve[-1][3] if curve and len(curve[-1]) > 3 else None,
    }


def worker(args: argparse.Namespace) -> dict:
    stop = THRESHOLDS[args.dataset][1] if args.dataset == "mnist" else 2.0
    epochs = 1 if args.quick else args.slow_epochs
    threads = {"threads": args.threads} if args.threads else {}
    if args.name == "notebook":
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        return run_notebook(args.dataset, args.seed, epochs or 5, stop, args.probes_per_epoch)
    slow = {"epochs": epochs} if epochs else {}
    if args.name == "cnnlab-default":
        overrides = {"model": "tutorial_cnn", **slow, **threads}
        return run_cnnlab(args.dataset, args.seed, None, overrides, args.probes_per_epoch)
    if args.name in EARLIER_FAST:  # earlier fast recipes, kept for comparison
        config = EARLIER_FAST[args.name]
        return run_cnnlab(args.dataset, args.seed, None, config, args.probes_per_epoch)
    return run_cnnlab(args.dataset, args.seed, args.name, {}, args.probes_per_epoch)


# ---------------------------------------------------------------- driver and report


def time_to(curve: list, threshold: float) -> float | None:
    """Training seconds at the first evaluation point reaching ``threshold``."""
    return next((c[1] for c in curve if c[2] >= threshold), None)


def cpu_to(curve: list, threshold: float) -> float | None:
    """CPU seconds (all threads) at the first evaluation point reaching ``threshold``."""
    return next((c[3] for c in curve if c[2] >= threshold and len(c) > 3), None)


def aggregate(runs: list[dict], thresholds: tuple[float, ...], peak: float) -> dict:
    def stat(values):
        values = [v for v in values if v is not None]
        if not values:
            return None
        return {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "n": len(values),
        }

    out = {f"t_{t}": stat([time_to(r["curve"], t) for r in runs]) for t in thresholds}
    out["reached"] = {
        str(t): sum(time_to(r["curve"], t) is not None for r in runs) for t in thresholds
    }
    for key in ("images_per_second", "peak_rss_mib", "final_accuracy", "train_seconds"):
        out[key] = stat([r[key] for r in runs])
    # training plus the test-time evaluation a user runs (flip TTA included when configured)
    out["train_and_test_seconds"] = stat(
        [r["train_seconds"] + r["test_seconds"] if "test_seconds" in r else None for r in runs]
    )
    out["per_seed"] = [[r.get("seed"), r["final_accuracy"]] for r in runs]
    out["fraction_of_fp32_peak"] = stat([r["achieved_flops"] / peak for r in runs])
    out["cpu_to_middle"] = stat([cpu_to(r["curve"], thresholds[1]) for r in runs])
    out["flops_per_image"] = runs[0]["flops_per_image"]
    return out


def _fmt_time(s, seeds: int | None = None) -> str:
    """Median (min-max) over the seeds that reached the point; says so when some did not."""
    if s is None:
        return "not reached"
    some = f"{s['n']} of {seeds} seeds" if seeds and s["n"] < seeds else ""
    if s["n"] == 1:
        return f"{s['median']:.1f} s" + (f" ({some})" if some else "")
    spread = f"{s['min']:.1f}-{s['max']:.1f}" + (f"; {some}" if some else "")
    return f"{s['median']:.1f} s ({spread})"


def markdown(report: dict) -> str:
    ds, th = report["dataset"], report["thresholds"]
    head = " | ".join(f"to {t:.1%}" for t in th)
    seeds = report.get("seed_list", report["seeds"])
    seeds = f"{seeds[0]}-{seeds[-1]}" if isinstance(seeds, list) else seeds
    probes = report.get("probes_per_epoch", 4)
    when = {0: "after the last step (the notebook loop: every epoch)", 1: "every epoch"}.get(
        probes, f"every 1/{probes} epoch"
    )
    lines = [
        f"Training on {ds} ({report['cpu']['model']}, {report['cpu']['cores']} cores; "
        f"seeds {seeds}; median (min-max); test accuracy {when}, "
        "evaluation excluded from the clock).",
        "",
        f"| contender | command | {head} | CPU-s to {th[1]:.1%} | final test acc (min-max) "
        "| train + test s | images/s | peak RSS | % of fp32 peak |",
        "| --- | --- | "
        + " | ".join("---:" for _ in th)
        + " | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, agg in report["summary"].items():
        runs = len(agg.get("per_seed") or []) or report["seeds"]
        times = " | ".join(_fmt_time(agg[f"t_{t}"], runs) for t in th)
        cpu = agg.get("cpu_to_middle")
        # "-": not reached or not recorded
        times += " | " + (_fmt_time(cpu, runs) if cpu else "-")
        acc = agg["final_accuracy"]
        both = agg.get("train_and_test_seconds")
        lines.append(
            f"| {name} | `{COMMANDS[name].format(ds=ds)}` | {times} | "
            f"{acc['median']:.2%} ({acc['min']:.2%}-{acc['max']:.2%}) | "
            f"{_fmt_time(both) if both else '-'} | {agg['images_per_second']['median']:,.0f} | "
            f"{agg['peak_rss_mib']['max']:,.0f} MiB | "
            f"{agg['fraction_of_fp32_peak']['median']:.1%} |"
        )
    lines += ["", "Final test accuracy of each seed:", ""]
    for name, agg in report["summary"].items():
        if agg.get("per_seed"):
            accs = ", ".join(f"{s}: {a:.2%}" for s, a in agg["per_seed"])
            n = len(agg["per_seed"])
            reached = ", ".join(
                f"{sum(a >= t for _, a in agg['per_seed'])} of {n} at {t:.1%}" for t in th[1:]
            )
            lines.append(f"- {name}: {accs} ({reached})")
    reference = report["summary"].get("notebook", {}).get(f"t_{th[1]}")
    if reference:
        lines += ["", f"Against the notebook loop's median time to {th[1]:.1%} test accuracy "
                  f"({reference['median']:.1f} s, this run):", ""]  # fmt: skip
        for name, agg in report["summary"].items():
            if name != "notebook" and agg.get("train_seconds"):
                train = agg["train_seconds"]["median"]
                lines.append(
                    f"- {name}: median training time {train:.2f} s, "
                    f"{reference['median'] / train:.1f}x sooner"
                )
    lines += [
        "",
        "Peak RSS: the largest of the seeds. Train + test s: training plus `run.evaluate()` on the "
        "10,000 test images (flip TTA when the recipe uses it).",
        f"fp32 peak: {report['cpu']['text']}.",
        f"Command: `{report['command']}`",
        f"Date: {report.get('date', '?')}; load average {report.get('load_average', '?')}.",
    ]
    notes = [note for name, note in EARLIER_FAST_NOTES.items() if name in report["summary"]]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist", choices=sorted(CONTENDERS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first .. first+seeds-1")
    p.add_argument("--quick", action="store_true", help="1 epoch for the slow contenders")
    p.add_argument("--only", nargs="*", choices=sorted(COMMANDS), help="contenders to run")
    p.add_argument(
        "--slow-epochs",
        type=int,
        default=None,
        help="epochs for notebook (default: 5, stops at 99%%) and cnnlab-default (default: 5)",
    )
    p.add_argument(
        "--slow-seeds",
        type=int,
        default=None,
        help="run notebook and cnnlab-default on the first N seeds only (default: every seed)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads for every contender")
    p.add_argument(
        "--probes-per-epoch",
        type=int,
        default=4,
        help="test-set probes per epoch (default 4; 0: cnnlab runs only after the last step)",
    )
    p.add_argument(
        "--out", default=None, help="output stem (default bench/results/train[-fashion])"
    )
    p.add_argument("--worker", dest="name", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--from-json", help="re-render the Markdown of a results JSON and exit")
    args = p.parse_args()
    if args.probes_per_epoch < 0:
        p.error(f"--probes-per-epoch {args.probes_per_epoch} must be 0 or more")
    os.environ.setdefault("CNNLAB_DATA", "/work/shared/data")
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        peak = report["cpu"]["peak_flops"]
        th = tuple(report["thresholds"])
        report["summary"] = {n: aggregate(r, th, peak) for n, r in report["runs"].items()}
        Path(args.from_json).with_suffix(".md").write_text(markdown(report))
        print(markdown(report))
        return
    if args.name:
        print(json.dumps(worker(args)))
        return
    names = args.only or CONTENDERS[args.dataset]
    cpu = cpu_peak()
    print(f"fp32 peak: {cpu['text']}", file=sys.stderr)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name in names:  # alternate contenders within each seed: noise hits all alike
            late = args.slow_seeds is not None and seed >= args.first_seed + args.slow_seeds
            if name in SLOW and late:
                continue
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--seed",
                str(seed),
                "--dataset",
                args.dataset,
            ]
            cmd += ["--quick"] if args.quick else []
            cmd += ["--slow-epochs", str(args.slow_epochs)] if args.slow_epochs else []
            cmd += ["--threads", str(args.threads)] if args.threads else []
            cmd += ["--probes-per-epoch", str(args.probes_per_epoch)]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            res["seed"], res["wall_seconds"] = seed, time.perf_counter() - t0
            runs[name].append(res)
            print(
                f"{name} seed {seed}: {res['train_seconds']:.1f} s train, "
                f"acc {res['final_accuracy']:.4f}, {res['images_per_second']:.0f} img/s, "
                f"curve {[c[2] for c in res['curve']]}",
                file=sys.stderr,
                flush=True,
            )
    th = THRESHOLDS[args.dataset]
    report = {
        "dataset": args.dataset,
        "seeds": args.seeds,
        "seed_list": list(range(args.first_seed, args.first_seed + args.seeds)),
        "quick": args.quick,
        "probes_per_epoch": args.probes_per_epoch,
        "cpu": cpu,
        "thresholds": th,
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "summary": {n: aggregate(r, th, cpu["peak_flops"]) for n, r in runs.items()},
        "runs": runs,
    }
    stem = (
        Path(args.out)
        if args.out
        else RESULTS / ("train" if args.dataset == "mnist" else "train-fashion")
    )
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
