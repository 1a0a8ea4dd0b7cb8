"""Image kernels and soft targets, before (functional.py of commit b529376) and now, alternated.

``python -m benchmarks.kernels_before_after [--rounds 31]`` times ``cut_images`` (default
``"auto"``, ``out=``, in place) and ``mix_labels`` from the old and the current
``cutmix.functional`` in one process (CPU, 1 thread), cases in a new random order every round, and
prints per-case medians, the median per-round ratio to ``copy_`` and the median per-round ratio
new / old. The new side runs with ``CUTMIX_NATIVE=0`` (the eager kernels, as without a C compiler). The old module is read with ``git show`` (run it inside the repository); it imports the
current ``cutmix`` for everything but its own kernels.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

import torch

import cutmix.functional as new
from benchmarks._before import module_at
from cutmix.params import sample_cutmix

# The eager kernels are what this compares: "auto" without the C kernels (cutmix._native).
os.environ["CUTMIX_NATIVE"] = "0"

BEFORE = "b529376"


def _old_module():
    return module_at(BEFORE, "src/cutmix/functional.py", "functional_before")


def _run(label: str, cases: dict[str, Callable[[], object]], rounds: int) -> None:
    """Alternate the cases; the first case is the reference of the ×ref column."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(2):
        for fn in cases.values():
            fn()
    names = list(cases)
    order = random.Random(0)
    for _ in range(rounds):
        order.shuffle(names)
        for k in names:
            t0 = time.perf_counter()
            cases[k]()
            times[k].append(time.perf_counter() - t0)
    ref = next(iter(cases))
    for k, v in times.items():
        ratio = statistics.median(a / b for a, b in zip(v, times[ref]))
        print(f"| {label} | {k} | {statistics.median(v) * 1e3:.3f} | {ratio:.2f} | |")
    for k in cases:
        if k.startswith("new "):
            old_k = "old " + k[4:]
            r = statistics.median(a / b for a, b in zip(times[k], times[old_k]))
            print(f"| {label} | new / old {k[4:]} | | | {r:.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=31)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    old = _old_module()
    print("| shape | case | median ms | ×ref (first row) | new / old |")
    print("|---|---|---|---|---|")
    for shape, dtype in [
        ((256, 3, 32, 32), torch.float32),
        ((128, 3, 224, 224), torch.float32),
        ((128, 3, 224, 224), torch.uint8),
    ]:
        n, _, h, w = shape
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(shape, generator=g) * 255).to(dtype)
        p = sample_cutmix(n, (h, w), generator=g)
        buf, work = torch.empty_like(x), x.clone()
        cases: dict[str, Callable[[], object]] = {"copy_": lambda x=x, buf=buf: buf.copy_(x)}
        for tag, mod in (("old", old), ("new", new)):
            cases[f"{tag} auto"] = lambda m=mod, x=x, p=p: m.cut_images(x, p)
            cases[f"{tag} out="] = lambda m=mod, x=x, p=p, buf=buf: m.cut_images(x, p, out=buf)
            cases[f"{tag} inplace"] = lambda m=mod, p=p, w=work: m.cut_images(w, p, inplace=True)
        label = f"{str(dtype).replace('torch.', '')} {'x'.join(map(str, shape))}"
        _run(label, cases, args.rounds)
    for classes in (1000, 21843):
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, classes, (128,), generator=g)
        p = sample_cutmix(128, (32, 32), generator=g)
        src, buf = torch.rand(128, classes, generator=g), torch.empty(128, classes)
        cases = {"copy_": lambda src=src, buf=buf: buf.copy_(src)}
        for tag, mod in (("old", old), ("new", new)):
            cases[f"{tag} mix_labels"] = lambda m=mod, y=y, p=p, c=classes: m.mix_labels(y, p, c)
            cases[f"{tag} mix_labels ε=0.1"] = lambda m=mod, y=y, p=p, c=classes: m.mix_labels(
                y, p, c, label_smoothing=0.1
            )
        _run(f"targets N=128 C={classes}", cases, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
