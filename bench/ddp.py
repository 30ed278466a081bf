"""Where a DDP step of speednet goes: compute vs all-reduce vs waiting, and what helps.

The `fast` recipe's step (its speednet, global batch 128, bf16 autocast, NHWC, fused Adam) is timed
in one process and in two torchrun processes on this machine's cores, for several ways of
wrapping the model:

    default       DistributedDataParallel(model) as torch builds it: a broadcast of the
                  batch-norm statistics before every forward, then the gradient all-reduce
    no-buffers    forward_sync_buffers=False: the gradient all-reduce only
    fp16-grads    no-buffers + the fp16 compression hook (half the all-reduce bytes; torch's
                  bf16 hook needs NCCL, gloo reduces fp16)
    cnnlab        what cnnlab's DistributedContext.wrap_model builds (no-buffers, gradients
                  as views into DDP's buckets)

In each two-process variant every rank also times, per step, the same forward + backward
without synchronisation (`no_sync`: compute), a barrier (waiting for the slower rank) and a
lone all-reduce of the gradient bytes. The split is reported per step in milliseconds, with the
CPU time per step summed over the processes (less sensitive to other jobs than wall time).
Variants run in --rounds interleaved rounds on fresh copies of the model; medians are reported.

    python bench/ddp.py                        # writes bench/results/ddp.{json,md}
    python bench/ddp.py --steps 60 --out /tmp/ddp
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, peak_rss_mib, write_report  # bench/ is on the path
from cnnlab.config import RECIPES

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("default", "no-buffers", "fp16-grads", "cnnlab")


def _setup(rank: int, world: int, threads: int, limit: int):
    import torch

    from cnnlab.config import resolve_config
    from cnnlab.engine.data_setup import make_loader, prepare_data
    from cnnlab.engine.device import set_threads
    from cnnlab.engine.optim import build_optimizer
    from cnnlab.models import create_model

    set_threads(threads)
    config = resolve_config(recipe="fast", limit_train=limit, val_fraction=0.0)
    torch.manual_seed(0)
    data = prepare_data(config)
    model = create_model(config.model, **config.model_kwargs)
    model = model.to(memory_format=torch.channels_last)
    loader = make_loader(config, data, rank, world)
    return config, model, loader, build_optimizer


def _wrap(model, variant: str, ctx):
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel as DDP

    if variant == "cnnlab":
        return ctx.wrap_model(model)
    wrapped = DDP(model, forward_sync_buffers=variant == "default")
    if variant == "fp16-grads":
        wrapped.register_comm_hook(None, default_hooks.fp16_compress_hook)
    return wrapped


def _batches(loader, steps: int):
    out, epoch = [], 0
    while len(out) < steps:
        out += list(loader.batches(epoch))
        epoch += 1
    return out[:steps]


def _step(model, opt, x, y, sync: bool = True):
    import contextlib

    import torch

    from cnnlab.engine.device import autocast

    guard = contextlib.nullcontext() if sync else model.no_sync()
    with guard:
        with autocast(torch.device("cpu"), True):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
    opt.step()
    return loss.item()


def _timed(model, opt, batches, warmup: int, barrier) -> dict:
    for x, y in batches[:warmup]:
        _step(model, opt, x, y)
    barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    for x, y in batches[warmup:]:
        _step(model, opt, x, y)
    c1 = time.process_time()
    barrier()
    n = len(batches) - warmup
    return {"step_ms": 1e3 * (time.perf_counter() - t0) / n, "cpu_ms": 1e3 * (c1 - c0) / n}


def worker(args: argparse.Namespace) -> dict:
    """One process: time ``args.steps`` steps of each variant (DDP when under torchrun)."""
    import copy

    import torch

    from cnnlab.engine import distributed as ddp

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    config, base, loader, build_optimizer = _setup(rank, world, args.threads, args.limit)
    batches = _batches(loader, args.steps + args.warmup)
    rounds: dict[str, list[dict]] = {}
    if world == 1:
        for _ in range(args.rounds):
            model = copy.deepcopy(base)
            opt = build_optimizer(model.parameters(), config)
            rounds.setdefault("single", []).append(
                _timed(model, opt, batches, args.warmup, lambda: None)
            )
        return {
            "world_size": 1,
            "threads": args.threads,
            "variants": _medians(rounds),
            "peak_rss_mib": [peak_rss_mib()["self"]],
        }
    with ddp.process_group("cpu") as ctx:
        for _ in range(args.rounds):
            for variant in VARIANTS:
                model = copy.deepcopy(base)
                wrapped = _wrap(model, variant, ctx)
                opt = build_optimizer(model.parameters(), config)
                timing = _timed(wrapped, opt, batches, args.warmup, ctx.barrier)
                timing.update(_split(wrapped, opt, batches[args.warmup :], ctx))
                rounds.setdefault(variant, []).append(timing)
                del wrapped
        medians = _medians(rounds)
        for timing in medians.values():  # CPU time of the group, not of rank 0 alone
            total = ctx.all_reduce_sum(torch.tensor([timing["cpu_ms"]], dtype=torch.float64))
            timing["cpu_ms"] = float(total[0])
        mine = torch.zeros(world, dtype=torch.float64)  # every rank's peak RSS, to rank 0
        mine[rank] = peak_rss_mib()["self"]
        peak = ctx.all_reduce_sum(mine).tolist()
    return {"world_size": world, "threads": args.threads, "variants": medians, "peak_rss_mib": peak}


def _medians(rounds: dict[str, list[dict]]) -> dict[str, dict]:
    return {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in rounds.items()
    }


def _split(model, opt, batches, ctx) -> dict:
    """Per-step ms of compute (no_sync), waiting (barrier) and a lone all-reduce of the grads."""
    import torch
    import torch.distributed as dist

    compute = wait = reduce = 0.0
    for x, y in batches:
        t0 = time.perf_counter()
        _step(model, opt, x, y, sync=False)
        t1 = time.perf_counter()
        dist.barrier()
        t2 = time.perf_counter()
        flat = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
        dist.all_reduce(flat)
        t3 = time.perf_counter()
        compute, wait, reduce = compute + t1 - t0, wait + t2 - t1, reduce + t3 - t2
    n = len(batches)
    return {
        "compute_ms": 1e3 * compute / n,
        "wait_ms": 1e3 * wait / n,
        "allreduce_ms": 1e3 * reduce / n,
        "grad_bytes": int(sum(p.numel() * 4 for p in model.parameters())),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace, nproc: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "rank0.json"
        worker_args = [__file__, "--worker", "--threads", str(threads), "--steps",
                       str(args.steps), "--warmup", str(args.warmup), "--limit",
                       str(args.limit), "--rounds", str(args.rounds),
                       "--result", str(out)]  # fmt: skip
        if nproc == 1:
            cmd = [sys.executable, *worker_args]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                   "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
                   *worker_args]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"`fast` step ({report.get('model', 'speednet')}, global batch 128, bf16, NHWC) on "
        f"{m['cpu']} ({m['cores']} cores), "
        f"{m['date']}; load average {report['load_before']} before / {report['load_after']} after; "
        f"{report['steps']} timed steps x {report['rounds']} rounds (median); milliseconds per "
        "step of the global batch; CPU ms summed over processes.",
        "",
        "| setup | step ms | images/s | CPU ms per step | compute | waiting | all-reduce alone "
        "| peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        parts = [f"{row.get(k, float('nan')):.1f}" if k in row else "-"
                 for k in ("compute_ms", "wait_ms", "allreduce_ms")]  # fmt: skip
        lines.append(
            f"| {row['setup']} | {row['step_ms']:.1f} | {128e3 / row['step_ms']:,.0f} | "
            f"{row['cpu_ms']:.1f} | " + " | ".join(parts) + f" | {row['peak_rss_mib']:,.0f} MiB |"
        )
    rss = report["peak_rss_mib"]
    lines += [
        "",
        "Peak RSS: per process, the largest rank (the 2-process variants share their two "
        f"processes); this script {rss['self']:,.0f} MiB, its largest child (a worker or the "
        f"torchrun launcher) {rss['children']:,.0f} MiB.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median)")
    p.add_argument("--limit", type=int, default=20000, help="MNIST training images used")
    p.add_argument("--threads", type=int, default=1, help="(worker) threads of this process")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(RESULTS / "ddp"), help="path stem for .json/.md")
    args = p.parse_args()
    if args.worker:
        result = worker(args)
        if int(os.environ.get("RANK", "0")) == 0:
            Path(args.result).write_text(json.dumps(result))
        return
    cores = len(os.sched_getaffinity(0))
    load_before = round(os.getloadavg()[0], 2)
    rows = []
    for threads in sorted({1, cores}):
        res = launch(args, 1, threads)
        rows.append(
            {
                "setup": f"1 process, {threads} thread(s)",
                **res["variants"]["single"],
                "peak_rss_mib": max(res["peak_rss_mib"]),
            }
        )
    res = launch(args, 2, max(1, cores // 2))
    for variant, timing in res["variants"].items():
        rows.append(
            {
                "setup": f"2 processes x {res['threads']} thread, {variant}",
                **timing,
                "peak_rss_mib": max(res["peak_rss_mib"]),
                "peak_rss_mib_ranks": res["peak_rss_mib"],
            }
        )
    fast = RECIPES["fast"]
    report = {
        "machine": machine(),
        "model": f"{fast['model']} {fast['model_kwargs'] or 'defaults'}",
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 2),
        "steps": args.steps,
        "rounds": args.rounds,
        "rows": rows,
        "peak_rss_mib": peak_rss_mib(),
        "command": "python bench/ddp.py " + " ".join(sys.argv[1:]),
    }
    write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
