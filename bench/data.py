"""Measure IDX loading and BatchLoader throughput: ``python bench/data.py [--threads 1]``.

The numbers in README.md ("Datasets") come from this script.
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib
from pathlib import Path

from _common import peak_rss_mib  # bench/ is on the path


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(data_dir: str | None = None, repeats: int = 5, epochs: int = 3) -> dict[str, float]:
    """Median seconds for inflating/loading MNIST train and images/s of the loader variants."""
    from cnnlab.data import Augment, BatchLoader, Normalizer, load_dataset, locate_dataset

    folder = locate_dataset("mnist", data_dir, download=False)
    gz = Path(folder) / "train-images-idx3-ubyte.gz"
    results: dict[str, float] = {}
    if gz.is_file():
        raw = gz.read_bytes()
        results["inflate_s"] = _median_seconds(
            lambda: zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw), repeats
        )
    results["load_s"] = _median_seconds(
        lambda: load_dataset("mnist", "train", data_dir, download=False), repeats
    )
    ds = load_dataset("mnist", "train", data_dir, download=False)
    norm = Normalizer("pixel").fit(ds.images)
    variants = {"plain": None, "shift2": Augment(2), "shift2_rot10": Augment(2, 10)}
    for name, aug in variants.items():
        loader = BatchLoader(ds, 256, shuffle=True, seed=0, normalizer=norm, augment=aug)
        rates = []
        for epoch in range(epochs):
            start = time.perf_counter()
            n = sum(len(y) for _, y in loader.batches(epoch))
            rates.append(n / (time.perf_counter() - start))
        results[f"loader_{name}_img_s"] = statistics.median(rates)
    return results


def main(argv: list[str] | None = None) -> int:
    import os

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = measure(args.data_dir)
    load = os.getloadavg()[0]
    print(f"torch threads {torch.get_num_threads()}, load average {load:.1f}")
    if "inflate_s" in res:
        print(f"zlib inflate train-images .gz (9.9 MB -> 47 MB): {res['inflate_s']:.3f} s")
    print(f"load_dataset('mnist', 'train') -> tensors:        {res['load_s']:.3f} s")
    for name, label in [
        ("plain", "no augmentation"),
        ("shift2", "Augment(shift=2)"),
        ("shift2_rot10", "Augment(shift=2, rotate=10)"),
    ]:
        rate = res[f"loader_{name}_img_s"]
        print(f"BatchLoader batch 256, pixel norm, {label + ':':<28} {rate:>9,.0f} images/s")
    print(f"Peak RSS: {peak_rss_mib()['self']:,.0f} MiB (this process)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
