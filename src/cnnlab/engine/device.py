"""Device, threads, determinism and bf16: the one place that knows about hardware.

>>> pick_device("cpu").type
'cpu'
"""

from __future__ import annotations

import contextlib
import logging
import os
import random

import numpy as np
import torch

from cnnlab.errors import ConfigError

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is available (use --device cpu)")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device={name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


def usable_cores() -> int:
    """Cores this process may run on (respects taskset / cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (default: usable cores); returns the number used."""
    n = threads or usable_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally force deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def cpu_flags() -> set[str]:
    """The CPU feature flags from /proc/cpuinfo (empty when unavailable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_supported(device: torch.device) -> bool:
    """True when bf16 autocast is fast here: CUDA with bf16, or a CPU with AMX / AVX512-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast context (a no-op context when disabled)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
