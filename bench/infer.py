"""Inference speed: batch throughput on the 10k MNIST test set and single-image latency.

Compares, in one process and alternating rounds (this machine is shared and noisy):
(a) the notebooks' eval loop (per-sample ToTensor conversion in a Dataset, DataLoader batch 150,
``no_grad``), (b) cnnlab's predict path variants (eager fp32, ``inference_mode``, channels_last,
bf16 autocast, 1 or N threads) and (c) ONNX Runtime on the exported model. Prints a Markdown
table and writes ``bench/results/infer.json``.

    python bench/infer.py --run runs/tutorial_cnn-mnist      # a trained run (accuracy checked)
    python bench/infer.py                                      # random tutorial_cnn weights
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from _common import peak_rss_mib  # bench/ is on the path

RESULTS = Path(__file__).resolve().parent / "results" / "infer.json"


def load_model(run: str | None, model_name: str):
    """(model, normalizer, run) from a trained run, or a fresh model with the unit normaliser."""
    from cnnlab.data import Normalizer
    from cnnlab.models import create_model

    if run:
        from cnnlab.run import load

        loaded = load(run)
        return loaded.model.eval(), loaded.normalizer
    torch.manual_seed(0)
    return create_model(model_name).eval(), Normalizer("unit")


# -- (a) the notebooks' loop --------------------------------------------------------------------
class NotebookDataset(torch.utils.data.Dataset):
    """torchvision.datasets.MNIST + ToTensor: a PIL image per item, converted in Python."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.images[i], mode="L")
        x = torch.from_numpy(np.array(img, dtype=np.float32) / 255.0)[None]  # ToTensor
        return x, int(self.labels[i])


def notebook_eval(model, images_u8: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Notebook 000's evaluation cell; returns (seconds, accuracy)."""
    loader = torch.utils.data.DataLoader(
        NotebookDataset(images_u8, labels), batch_size=150, shuffle=False
    )
    start = time.perf_counter()
    correct = 0
    model.eval()
    with torch.no_grad():
        for data, target in loader:
            pred = model(data).argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    return time.perf_counter() - start, correct / len(labels)


# -- (b) cnnlab's path --------------------------------------------------------------------------
def torch_batched(model, x: torch.Tensor, batch: int, *, bf16=False, cl=False, grad_mode="inf"):
    """Logits for the whole set in chunks of ``batch``; returns (seconds, logits)."""
    m = (
        model.to(memory_format=torch.channels_last)
        if cl
        else model.to(memory_format=torch.contiguous_format)
    )
    ctx = torch.inference_mode if grad_mode == "inf" else torch.no_grad
    start = time.perf_counter()
    outs = []
    with ctx(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(x), batch):
            xb = x[i : i + batch]
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            outs.append(m(xb).float())
    logits = torch.cat(outs)
    seconds = time.perf_counter() - start
    model.to(memory_format=torch.contiguous_format)
    return seconds, logits.numpy()


def fused_batched(fused, x: torch.Tensor, batch: int):
    """Logits through a FusedInference (frozen TorchScript + oneDNN graph, NHWC input)."""
    start = time.perf_counter()
    outs = [
        fused(x[i : i + batch].contiguous(memory_format=torch.channels_last)).float()
        for i in range(0, len(x), batch)
    ]
    logits = torch.cat(outs)
    return time.perf_counter() - start, logits.numpy()


def make_fused(model, x: torch.Tensor, batch: int, threads: int, bf16: bool):
    """(FusedInference, seconds to trace, freeze and profile it) with ``threads`` threads."""
    from cnnlab.engine.evaluate import fused_inference

    torch.set_num_threads(threads)
    start = time.perf_counter()
    fused = fused_inference(model, x[:batch], bf16=bf16, channels_last=True)
    return fused, time.perf_counter() - start


def latency(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(median ms, p99 ms) of ``n`` calls after a warm-up."""
    for _ in range(min(50, n)):
        fn()
    times = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1e3), float(np.percentile(times, 99) * 1e3)


def torch_single(model, x1: torch.Tensor, bf16=False, cl=False):
    m = model.to(memory_format=torch.channels_last) if cl else model
    x1 = x1.contiguous(memory_format=torch.channels_last) if cl else x1

    def call():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return m(x1)

    return call


# -- (c) ONNX Runtime ---------------------------------------------------------------------------
def onnx_session(model, folder: Path, threads: int):
    import onnxruntime as ort

    from cnnlab.export import _onnx_export

    path = folder / "model.onnx"
    if not path.exists():
        _onnx_export(model, torch.zeros(2, *_input_shape(model)), path, 18)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _input_shape(model) -> tuple[int, int, int]:
    args = getattr(model, "cnnlab_args", {})
    size = args.get("input_size", 28)
    h, w = (size, size) if isinstance(size, int) else size
    return (args.get("in_channels", 1), h, w)


def ort_batched(session, x: np.ndarray, batch: int):
    start = time.perf_counter()
    outs = [session.run(None, {"input": x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return time.perf_counter() - start, np.concatenate(outs)


# -- driver -------------------------------------------------------------------------------------
def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bf16_supported() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return any(f in flags for f in ("amx_bf16", "avx512_bf16"))


def run(args) -> dict:
    from cnnlab.data import load_dataset

    load_at_start = list(os.getloadavg())  # the machine is shared: say how busy it was
    test = load_dataset("mnist", "test")
    images_u8, labels = test.images, test.labels.numpy()
    model, normalizer = load_model(args.run, args.model)
    x = normalizer(images_u8).contiguous()
    xnp = x.numpy()
    x1 = x[:1].clone()
    cores = os.cpu_count() or 1
    thread_counts = sorted(
        {int(t) for t in args.threads.split(",")} if args.threads else {1, cores}
    )
    tmp = Path(tempfile.mkdtemp(prefix="cnnlab-infer-"))
    sessions = {t: onnx_session(model, tmp, t) for t in thread_counts}
    use_bf16 = bf16_supported()
    fused = {t: make_fused(model, x, args.batch, t, use_bf16) for t in thread_counts}
    fused_name = "cnnlab fused TorchScript (oneDNN graph)" + (" bf16" if use_bf16 else "")

    batch_variants: dict[str, Callable[[], tuple[float, np.ndarray]]] = {}
    for t in thread_counts:
        batch_variants[f"cnnlab fp32 no_grad, {t}T"] = lambda t=t: torch_batched(
            model, x, args.batch, grad_mode="no_grad"
        )
        batch_variants[f"cnnlab fp32 inference_mode, {t}T"] = lambda t=t: torch_batched(
            model, x, args.batch
        )
        batch_variants[f"cnnlab channels_last, {t}T"] = lambda t=t: torch_batched(
            model, x, args.batch, cl=True
        )
        if use_bf16:
            batch_variants[f"cnnlab bf16 autocast, {t}T"] = lambda t=t: torch_batched(
                model, x, args.batch, bf16=True
            )
            batch_variants[f"cnnlab bf16 + channels_last, {t}T"] = lambda t=t: torch_batched(
                model, x, args.batch, bf16=True, cl=True
            )
        batch_variants[f"{fused_name}, {t}T"] = lambda t=t: fused_batched(
            fused[t][0], x, args.batch
        )
        batch_variants[f"ONNX Runtime, {t}T"] = lambda t=t: ort_batched(
            sessions[t], xnp, args.batch
        )

    def threads_of(name: str) -> int:
        found = re.search(r", (\d+)T$", name)
        return int(found.group(1)) if found else cores

    rows: dict[str, dict] = {}
    nb_times = []
    for _round in range(args.rounds):  # alternate variants each round: fair under noise
        torch.set_num_threads(cores)
        seconds, acc = notebook_eval(model, images_u8[:, 0].numpy(), labels)
        nb_times.append(seconds)
        log(f"round {_round}: notebook loop: {seconds:.3f} s")
        rows.setdefault("notebook loop (DataLoader, batch 150)", {"accuracy": acc})
        for name, fn in batch_variants.items():
            torch.set_num_threads(threads_of(name))
            seconds, logits = fn()
            log(f"round {_round}: {name}: {seconds:.3f} s")
            row = rows.setdefault(name, {"times": []})
            row["times"].append(seconds)
            row["accuracy"] = float(np.mean(logits.argmax(1) == labels))
    rows["notebook loop (DataLoader, batch 150)"]["times"] = nb_times

    x1_cl = x1.contiguous(memory_format=torch.channels_last)
    single: dict[str, Callable[[], object]] = {}
    for t in thread_counts:
        single[f"cnnlab fp32 inference_mode, {t}T"] = torch_single(model, x1)
        single[f"cnnlab channels_last, {t}T"] = torch_single(model, x1, cl=True)
        if use_bf16:
            single[f"cnnlab bf16 autocast, {t}T"] = torch_single(model, x1, bf16=True)
        one, _ = make_fused(model, x1, 1, t, use_bf16)
        single[f"{fused_name}, {t}T"] = lambda one=one: one(x1_cl)
        s, x1np = sessions[t], x1.numpy()
        single[f"ONNX Runtime, {t}T"] = lambda s=s, x1np=x1np: s.run(None, {"input": x1np})
    single[f"notebook style no_grad model(x), {cores}T"] = _notebook_single(model, x1)
    for name, fn in single.items():
        torch.set_num_threads(threads_of(name))
        med, p99 = latency(fn, args.single)
        log(f"single {name}: median {med:.4f} ms, p99 {p99:.4f} ms")
        rows.setdefault(name, {})
        rows[name].update(single_median_ms=round(med, 4), single_p99_ms=round(p99, 4))
    torch.set_num_threads(cores)
    model.to(memory_format=torch.contiguous_format)
    for t, (_, seconds) in fused.items():
        rows[f"{fused_name}, {t}T"]["setup_seconds"] = round(seconds, 2)

    for row in rows.values():
        if "times" in row:
            best = min(row["times"])
            row["batch_images_per_s"] = round(len(labels) / best)
            row["batch_seconds_median"] = round(statistics.median(row["times"]), 4)
            row["times"] = [round(t, 4) for t in row["times"]]
    return {
        "model": getattr(model, "cnnlab_args", {}).get("name", args.model),
        "run": args.run,
        "images": int(len(labels)),
        "batch_size": args.batch,
        "rounds": args.rounds,
        "single_calls": args.single,
        "cores": cores,
        "thread_counts": thread_counts,
        "load_average_at_start": load_at_start,
        "load_average_at_end": list(os.getloadavg()),
        "bf16_autocast": use_bf16,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "variants": rows,
        "peak_rss_mib": peak_rss_mib()["self"],  # MiB
    }


def _notebook_single(model, x1):
    def call():
        with torch.no_grad():
            return model.forward(x1)

    return call


def table(result: dict) -> str:
    lines = [
        "| variant | batch images/s | accuracy | 1-image median ms | 1-image p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["variants"].items():
        ips = f"{row['batch_images_per_s']:,}" if "batch_images_per_s" in row else "–"
        acc = f"{100 * row['accuracy']:.2f}%" if "accuracy" in row else "–"
        med = f"{row['single_median_ms']:.3f}" if "single_median_ms" in row else "–"
        p99 = f"{row['single_p99_ms']:.3f}" if "single_p99_ms" in row else "–"
        lines.append(f"| {name} | {ips} | {acc} | {med} | {p99} |")
    lines += [
        "",
        f"Peak RSS: {result['peak_rss_mib']:,.0f} MiB (this process: every variant, in turn)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="trained run folder or checkpoint (default: random weights)")
    parser.add_argument("--model", default="tutorial_cnn", help="model when no --run is given")
    parser.add_argument("--batch", type=int, default=500, help="batch size for throughput")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    parser.add_argument("--single", type=int, default=2000, help="single-image calls timed")
    parser.add_argument(
        "--threads", help="comma-separated thread counts (default: 1 and all cores)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args)
    text = table(result)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**result, "table": text}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
