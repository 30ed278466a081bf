"""Scratch: find the fastest plain-PyTorch recipe to 99% MNIST test accuracy on this CPU.

Usage: python bench/_explore.py CONFIG_JSON [CONFIG_JSON ...]   (each a dict of run() kwargs)
Prints one JSON line per run. Not part of the product; delete when the recipes are settled.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = Path("/work/shared/data")


def load(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    pre = "train" if split == "train" else "t10k"
    raw = gzip.decompress((DATA / name / f"{pre}-images-idx3-ubyte.gz").read_bytes())
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    raw = gzip.decompress((DATA / name / f"{pre}-labels-idx1-ubyte.gz").read_bytes())
    y = np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(x.copy()), torch.from_numpy(y)


class Tutorial(nn.Module):
    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.fc1 = nn.Linear(576, 64)
        self.fc2 = nn.Linear(64, 10)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        x = self.drop(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def cbr(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int | None = None) -> nn.Sequential:
    pad = k // 2 if pad is None else pad
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ReshapeMax(nn.Module):
    def forward(self, x):
        b, c, h, w = x.shape
        x = x[:, :, : h // 2 * 2, : w // 2 * 2]
        return x.unflatten(3, (w // 2, 2)).unflatten(2, (h // 2, 2)).amax((3, 5))


POOLS = {"max": lambda: nn.MaxPool2d(2), "avg": lambda: nn.AvgPool2d(2), "rmax": ReshapeMax}


class Fast(nn.Module):
    """'M' = maxpool 2; ints = 3x3 conv widths; pool_first: conv -> pool -> BN -> ReLU.

    head: 'max' / 'avg' global pooling or 'flat' (flatten + linear)."""

    def __init__(
        self,
        plan=(16, "M", 32, "M", 64, "M"),
        k1: int = 3,
        pool: str = "max",
        stride1: int = 1,
        head_scale: float = 1.0,
        pool_first: bool = True,
        bn: bool = True,
        size: int = 28,
        pool_kind: str = "max",
    ):
        super().__init__()
        layers, cin, first = [], 1, True
        plan = list(plan)
        i = 0
        while i < len(plan):
            p = plan[i]
            if p == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
                i += 1
                continue
            k = k1 if first else 3
            conv = nn.Conv2d(cin, p, k, stride1 if first else 1, k // 2, bias=not bn)
            if first:
                size = (size + 2 * (k // 2) - k) // (stride1 if first else 1) + 1
            post = [nn.BatchNorm2d(p)] if bn else []
            post.append(nn.ReLU(inplace=True))
            if pool_first and i + 1 < len(plan) and plan[i + 1] == "M":
                if pool_kind == "stride":
                    conv = nn.Conv2d(cin, p, 3, 2, 1, bias=not bn)
                    layers += [conv, *post]
                    size = (size + 1) // 2
                    i += 2
                    cin, first = p, False
                    continue
                else:
                    layers += [conv, POOLS[pool_kind](), *post]
                size //= 2
                i += 2
            else:
                layers += [conv, *post]
                i += 1
            cin, first = p, False
        self.features = nn.Sequential(*layers)
        self.pool = pool
        n = cin * size * size if pool == "flat" else cin
        self.fc = nn.Linear(n, 10, bias=False)
        self.head_scale = head_scale

    def forward(self, x):
        x = self.features(x)
        if self.pool == "flat":
            x = x.flatten(1)
        else:
            x = x.amax((2, 3)) if self.pool == "max" else x.mean((2, 3))
        return self.fc(x) * self.head_scale


class FastFlat(nn.Module):
    """conv blocks then flatten + linear (keeps position info, like the tutorial)."""

    def __init__(self, plan=(16, "M", 32, "M"), hidden: int = 0):
        super().__init__()
        layers, cin = [], 1
        size = 28
        for p in plan:
            if p == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
            else:
                layers.append(cbr(cin, p))
                cin = p
        self.features = nn.Sequential(*layers)
        n = cin * size * size
        self.fc = (
            nn.Linear(n, 10)
            if not hidden
            else nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        )

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class S2D(nn.Module):
    """pixel_unshuffle(r) then conv-BN-ReLU blocks ('M' = maxpool) then a flat/max head."""

    def __init__(
        self,
        r: int = 4,
        plan=(64, 64),
        head: str = "flat",
        k: int = 3,
        fp32_first: bool = False,
        hidden: int = 0,
    ):
        super().__init__()
        self.r = r
        size, cin, layers = 28 // r, r * r, []
        for p in plan:
            if p == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
            else:
                layers.append(cbr(cin, p, k))
                cin = p
        self.features = nn.Sequential(*layers)
        self.head = head
        n = cin * size * size if head == "flat" else cin
        self.fc = (
            nn.Linear(n, 10)
            if not hidden
            else nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        )

    def forward(self, x):
        if self.r > 1:
            x = F.pixel_unshuffle(x, self.r)
        x = self.features(x)
        if self.head == "flat":
            x = x.flatten(1)
        else:
            x = x.amax((2, 3)) if self.head == "max" else x.mean((2, 3))
        return self.fc(x)


def build(arch: str, **kw) -> nn.Module:
    if arch.startswith("reg:"):
        import cnnlab.models.speed  # noqa: F401
        from cnnlab.models import create_model

        return create_model(arch[4:], **kw)
    return {"tutorial": Tutorial, "fast": Fast, "flat": FastFlat, "s2d": S2D}[arch](**kw)


def shift_batch(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random integer translation per image via pad + crop (batched, no Python per sample)."""
    b = x.shape[0]
    p = max_shift
    xp = F.pad(x, (p, p, p, p))
    dx = torch.randint(0, 2 * p + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * p + 1, (b,), generator=gen)
    ar = torch.arange(28)
    rows = dy[:, None] + ar[None, :]  # (B, 28)
    cols = dx[:, None] + ar[None, :]
    idx_b = torch.arange(b)[:, None, None]
    return xp[:, 0][idx_b, rows[:, :, None], cols[:, None, :]][:, None]


def run(
    arch="fast",
    kw=None,
    epochs=2.0,
    bs=512,
    opt="sgd",
    lr=0.2,
    mom=0.9,
    wd=5e-4,
    ls=0.1,
    sched="onecycle",
    warm=0.25,
    cl=True,
    bf16=True,
    threads=2,
    seed=0,
    evals_per_epoch=4,
    dataset="mnist",
    norm="meanstd",
    shift=0,
    final_lr=0.0,
    eval_only_end=False,
    nesterov=True,
    time_cap=None,
):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    xtr, ytr = load(dataset, "train")
    xte, yte = load(dataset, "test")
    mean, std = (xtr.float().mean() / 255, xtr.float().std() / 255) if norm == "meanstd" else (0, 1)
    model = build(arch, **(kw or {}))
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    params_bn = [p for n, p in model.named_parameters() if p.ndim <= 1]
    params_w = [p for n, p in model.named_parameters() if p.ndim > 1]
    groups = [{"params": params_w, "weight_decay": wd}, {"params": params_bn, "weight_decay": 0}]
    if opt == "sgd":
        o = torch.optim.SGD(groups, lr=lr, momentum=mom, nesterov=nesterov)
    elif opt == "adam":
        o = torch.optim.Adam(groups, lr=lr)
    elif opt == "adamw":
        o = torch.optim.AdamW(groups, lr=lr)
    n = len(xtr)
    steps_per_epoch = math.ceil(n / bs)
    total = int(round(epochs * steps_per_epoch))
    warm_steps = max(1, int(warm * total))

    def lr_at(s):
        if sched == "const":
            return lr
        if s < warm_steps:
            return lr * (s + 1) / warm_steps
        frac = (s - warm_steps) / max(1, total - warm_steps)
        if sched == "onecycle":  # linear down
            return lr * (1 - frac) + final_lr * frac
        return final_lr + (lr - final_lr) * 0.5 * (1 + math.cos(math.pi * frac))

    crit = nn.CrossEntropyLoss(label_smoothing=ls)
    g = torch.Generator().manual_seed(seed)
    eval_steps = set()
    if not eval_only_end:
        for e in range(int(math.ceil(epochs)) * evals_per_epoch + 1):
            eval_steps.add(int(round(e * steps_per_epoch / evals_per_epoch)))
    eval_steps.add(total)
    xte_f = ((xte.float() / 255 - mean) / std).contiguous(memory_format=fmt)

    def evaluate():
        model.eval()
        correct = 0
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            for i in range(0, len(xte_f), 2500):
                correct += (model(xte_f[i : i + 2500]).argmax(1) == yte[i : i + 2500]).sum().item()
        model.train()
        return correct / len(xte_f)

    clock = cpu = 0.0
    curve = []
    step = 0
    perm = None
    t_first = None
    while step < total:
        pos = step % steps_per_epoch
        if pos == 0:
            perm = torch.randperm(n, generator=g)
        t0, c0 = time.perf_counter(), time.process_time()
        idx = perm[pos * bs : (pos + 1) * bs]
        xb = xtr[idx].float().div_(255)
        if shift:
            xb = shift_batch(xb, shift, g)
        xb = ((xb - mean) / std).contiguous(memory_format=fmt)
        yb = ytr[idx]
        for grp in o.param_groups:
            grp["lr"] = lr_at(step)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = model(xb)
        loss = crit(out.float(), yb)
        o.zero_grad(set_to_none=True)
        loss.backward()
        o.step()
        step += 1
        dt = time.perf_counter() - t0
        clock += dt
        cpu += time.process_time() - c0
        if t_first is None:
            t_first = dt
        if step in eval_steps:
            curve.append((round(step / steps_per_epoch, 3), round(cpu, 2), evaluate()))
        if time_cap and clock > time_cap:
            break
    thr = {}
    for t in (0.985, 0.99, 0.992, 0.994, 0.996):
        hit = next((c for c in curve if c[2] >= t), None)
        thr[str(t)] = hit[1] if hit else None
    return {
        "arch": arch,
        "kw": kw,
        "epochs": epochs,
        "bs": bs,
        "opt": opt,
        "lr": lr,
        "ls": ls,
        "cl": cl,
        "bf16": bf16,
        "seed": seed,
        "shift": shift,
        "train_s": round(clock, 2),
        "cpu_s": round(cpu, 2),
        "first_step_s": round(t_first, 3),
        "img_s": round(step * bs / clock),
        "img_cpu_s": round(step * bs / cpu),
        "final_acc": curve[-1][2],
        "t_to": thr,
        "curve": curve,
    }


def speed(arch="fast", kw=None, bs=512, cl=True, bf16=True, threads=2, steps=8, opt="sgd"):
    """Median seconds per optimiser step (fwd+bwd+step) on random data, plus CPU seconds."""
    torch.set_num_threads(threads)
    model = build(arch, **(kw or {})).to(
        memory_format=torch.channels_last if cl else torch.contiguous_format
    )
    o = (
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        if opt == "sgd"
        else torch.optim.Adam(model.parameters())
    )
    x = torch.randint(0, 255, (bs, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (bs,))
    ts, cs = [], []
    for i in range(steps + 2):
        t0, c0 = time.perf_counter(), time.process_time()
        xb = (
            x.float()
            .div_(255)
            .contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
        )
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = model(xb)
        loss = F.cross_entropy(out.float(), y)
        o.zero_grad()
        loss.backward()
        o.step()
        if i >= 2:
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
    return {
        "arch": arch,
        "kw": kw,
        "bs": bs,
        "cl": cl,
        "bf16": bf16,
        "threads": threads,
        "ms_step": round(1000 * float(np.median(ts)), 1),
        "img_s_wall": round(bs / float(np.median(ts))),
        "img_s_cpu": round(bs * threads / float(np.median(cs))),
    }


def race(configs, rounds=12, bs=256, threads=1):
    """Interleave one training step of each config per round; min/median wall and CPU ms/step."""
    torch.set_num_threads(threads)
    x = torch.randint(0, 255, (bs, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (bs,))
    runs = []
    for c in configs:
        fmt = torch.channels_last if c.get("cl", True) else torch.contiguous_format
        m = build(c.get("arch", "fast"), **c.get("kw", {})).to(memory_format=fmt)
        opt = (
            torch.optim.Adam(m.parameters())
            if c.get("opt") == "adam"
            else torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        )
        runs.append((c, m, opt, fmt, [], []))
    for r in range(rounds):
        for c, m, opt, fmt, ws, cs in runs:
            t0, c0 = time.perf_counter(), time.process_time()
            xb = x.float().div_(255).contiguous(memory_format=fmt)
            with torch.autocast("cpu", torch.bfloat16, enabled=c.get("bf16", True)):
                out = m(xb)
            loss = F.cross_entropy(out.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if r >= 2:
                ws.append(time.perf_counter() - t0)
                cs.append(time.process_time() - c0)
    out = []
    for c, _m, _opt, _fmt, ws, cs in runs:
        out.append(
            {
                **c,
                "cpu_min_ms": round(1000 * min(cs), 1),
                "cpu_med_ms": round(1000 * float(np.median(cs)), 1),
                "wall_min_ms": round(1000 * min(ws), 1),
                "img_s_1core_est": round(bs / min(cs)),
            }
        )
    return out


def profile_recipe(recipe="fast", steps=20, threads=2, model=None):
    """torch.profiler over `steps` training steps of a recipe through cnnlab's own pieces."""
    from torch.profiler import ProfilerActivity, profile, record_function

    import cnnlab.models.speed  # noqa: F401
    from cnnlab.config import resolve_config
    from cnnlab.engine.data_setup import make_loader, prepare_data
    from cnnlab.engine.optim import build_loss, build_optimizer
    from cnnlab.models import create_model

    over = {"model": model, "model_kwargs": {}} if model else {}
    cfg = resolve_config(recipe, data_dir=str(DATA), threads=threads, **over)
    torch.set_num_threads(threads)
    data = prepare_data(cfg)
    net = create_model(cfg.model, **cfg.model_kwargs).to(memory_format=torch.channels_last)
    opt, loss_fn = build_optimizer(net.parameters(), cfg), build_loss(cfg)
    batches = make_loader(cfg, data).batches(0)

    def step():
        with record_function("data: BatchLoader"):
            x, y = next(batches)
        with record_function("forward"), torch.autocast("cpu", torch.bfloat16, enabled=cfg.bf16):
            out = net(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            opt.step()

    for _ in range(5):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        for _ in range(steps):
            step()
    ev = p.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in ev)
    rows = []
    for e in sorted(ev, key=lambda e: -e.self_cpu_time_total)[:18]:
        shapes = ", ".join(str(tuple(s)) for s in e.input_shapes[:2] if s)
        rows.append(
            f"| {e.key} | {shapes} | {e.self_cpu_time_total / 1e3 / steps:.2f} | "
            f"{100 * e.self_cpu_time_total / total:.1f}% |"
        )
    ranges = {
        e.key: e.cpu_time_total / 1e3 / steps
        for e in p.key_averages()
        if e.key in ("data: BatchLoader", "forward", "backward", "optimizer")
    }
    return {
        "recipe": recipe,
        "model": cfg.model,
        "batch": cfg.batch_size,
        "threads": threads,
        "ms_per_step_total": total / 1e3 / steps,
        "phases_ms": ranges,
        "rows": rows,
    }


if __name__ == "__main__":
    if sys.argv[1] == "profile":
        res = profile_recipe(**json.loads(sys.argv[2]))
        print(json.dumps({k: v for k, v in res.items() if k != "rows"}))
        print("\n".join(res["rows"]))
    elif sys.argv[1] == "race":
        for row in race([json.loads(a) for a in sys.argv[2:]]):
            print(json.dumps(row), flush=True)
    else:
        fn = speed if sys.argv[1] == "speed" else run
        for arg in sys.argv[2 if fn is speed else 1 :]:
            print(json.dumps(fn(**json.loads(arg))), flush=True)
