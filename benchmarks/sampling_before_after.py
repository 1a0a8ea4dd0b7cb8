"""Sampling cost per call, before (params.py of commit 80f7977) and now, alternated in one process.

``python -m benchmarks.sampling_before_after [--reps 300]`` prints median and minimum µs per call
of ``sample_cutmix`` / ``sample_mixup`` at N = 4, 128, 256 (CPU, 1 thread). The old module is read
with ``git show`` (run it inside the repository).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import cutmix.params as new
from benchmarks._before import module_at

BEFORE = "80f7977"


def _old_module():
    return module_at(BEFORE, "src/cutmix/params.py", "params_before")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=300)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    old = _old_module()
    g = torch.Generator().manual_seed(0)
    calls = {
        "sample_cutmix sample": lambda m, n: m.sample_cutmix(n, (224, 224), generator=g),
        "sample_cutmix pair p=0.5": lambda m, n: m.sample_cutmix(
            n, (224, 224), mode="pair", p=0.5, generator=g
        ),
        "sample_cutmix batch": lambda m, n: m.sample_cutmix(
            n, (224, 224), mode="batch", generator=g
        ),
        "sample_mixup alpha=0.2": lambda m, n: m.sample_mixup(n, alpha=0.2, generator=g),
    }
    cases = {
        (n, name, tag): (fn, mod, n)
        for n in (4, 128, 256)
        for name, fn in calls.items()
        for tag, mod in (("before", old), ("now", new))
    }
    times: dict[tuple, list[float]] = {k: [] for k in cases}
    for fn, mod, n in cases.values():
        for _ in range(10):
            fn(mod, n)
    for _ in range(args.reps):
        for k, (fn, mod, n) in cases.items():
            t0 = time.perf_counter()
            fn(mod, n)
            times[k].append(time.perf_counter() - t0)
    print("| N | call | before µs (median / min) | now µs (median / min) | speed-up (median) |")
    print("|---|---|---|---|---|")
    for n in (4, 128, 256):
        for name in calls:
            b, a = times[(n, name, "before")], times[(n, name, "now")]
            mb, ma = statistics.median(b), statistics.median(a)
            print(
                f"| {n} | {name} | {mb * 1e6:.0f} / {min(b) * 1e6:.0f} | "
                f"{ma * 1e6:.0f} / {min(a) * 1e6:.0f} | {mb / ma:.2f}× |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
