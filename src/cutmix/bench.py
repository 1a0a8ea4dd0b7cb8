"""``cutmix bench``: how fast is CutMix on this machine? Ours against ``copy_`` and ``clone()``.

Times, on CPU (and on CUDA when available), one f32 batch: ``cut_images`` out of place, into a
reused ``out=`` buffer and in place, and the full ``CutMix()`` call (sampling, images, soft
targets), against a ``copy_`` into a preallocated buffer (``×copy``) and a ``clone()``
(``×clone``) timed in the same rounds. The cases alternate in a new order every round after a
warm-up; medians. The full benchmark with peers (timm, torchvision, kornia), a loaded scenario
and the issues' goals is ``python -m benchmarks.run`` in a checkout (benchmarks/RESULTS.md).

Example:
    >>> from cutmix.bench import main
    >>> main(["--smoke", "--quiet"])
    0
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

import cutmix
from cutmix import functional as F

__all__ = ["Row", "Timer", "format_table", "main", "paired_ratio", "set_ratios"]

Case = Callable[[], Any]


@dataclass
class Row:
    """One timed case of one section."""

    section: str
    shape: str
    case: str
    median_ms: float
    n: int
    kind: str = "ours"  # "ours", "ref" or "peer"
    ratios: dict[str, float] = field(default_factory=dict)
    note: str = ""
    times_ms: list[float] = field(default_factory=list)  # one per round, in round order


class Timer:
    """Alternating (order shuffled each round), warmed-up, median timing on CPU or CUDA (events)."""

    def __init__(
        self,
        device: torch.device,
        reps: int,
        warmup: int,
        budget_s: float,
        before: Case | None = None,
        min_reps: int = 3,
    ) -> None:
        self.device, self.reps, self.warmup, self.budget_s = device, reps, warmup, budget_s
        self.before = before  # run untimed before every timed call (e.g. a parallel op)
        self.min_reps = min_reps  # rounds even for a case slower than budget_s
        self.samples: dict[str, list[float]] = {}  # seconds per round of the last run()

    def _once(self, fn: Case) -> float:
        if self.before is not None:
            self.before()
        if self.device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def run(self, cases: dict[str, Case]) -> dict[str, tuple[float, int]]:
        """Median seconds and sample count per case; slow cases get fewer reps (budget_s each)."""
        caps: dict[str, int] = {}
        for name, fn in cases.items():
            first = min(self._once(fn) for _ in range(max(1, self.warmup)))
            cap = min(self.reps, int(self.budget_s / max(first, 1e-9)))
            caps[name] = max(min(self.min_reps, self.reps), cap)
        times: dict[str, list[float]] = {k: [] for k in cases}
        names = list(cases)
        order = random.Random(0)
        for _ in range(max(caps.values())):
            # A new (seeded) order every round: in a fixed order a case always follows the same
            # neighbour and inherits its allocator and cache state (measured: up to 2x on one case).
            order.shuffle(names)
            for name in names:
                if len(times[name]) < caps[name]:
                    times[name].append(self._once(cases[name]))
        self.samples = times
        return {k: (statistics.median(v), len(v)) for k, v in times.items()}

    def rows(self, res: dict[str, tuple[float, int]], section: str, shape: str) -> list[Row]:
        """One :class:`Row` per case of the last :meth:`run`, with its per-round times."""
        return [
            Row(section, shape, k, 1e3 * t, n, times_ms=[1e3 * s for s in self.samples[k]])
            for k, (t, n) in res.items()
        ]


def paired_ratio(row: Row, ref: Row) -> float:
    """Median over rounds of ``row / ref`` timed in the same round (k-th sample = k-th round).

    Pairing cancels the drift of a shared machine between rounds; with no per-round times it is
    the ratio of the medians.
    """
    k = min(len(row.times_ms), len(ref.times_ms))
    if k == 0:
        return row.median_ms / ref.median_ms
    return statistics.median(a / b for a, b in zip(row.times_ms[:k], ref.times_ms[:k]))


def set_ratios(rows: list[Row], refs: dict[str, str]) -> None:
    """Fill ``ratios[name]`` of every timed row against the case ``refs[name]`` of the same list."""
    by = {r.case: r for r in rows}
    for r in rows:
        for name, case in refs.items():
            if r.n and case in by and by[case].n:
                r.ratios[name] = paired_ratio(r, by[case])


def format_table(rows: list[Row]) -> str:
    """A Markdown table: section, shape, case, median ms, rounds, the ratio columns, note."""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r.ratios if c not in cols]
    # Ratios are "×ref"; a unit such as "ns/byte" is printed as it is.
    named = [c if "/" in c else f"×{c}" for c in cols]
    head = ["section", "shape", "case", "median ms", "n", *named, "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [f"{r.ratios[c]:.2f}" if c in r.ratios else "" for c in cols]
        ms = "n/a" if r.n == 0 else f"{r.median_ms:.3f}"
        cells = [r.section, r.shape, r.case, ms, str(r.n), *vals, r.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shape_str(shape: tuple[int, ...], dtype: torch.dtype) -> str:
    return f"{str(dtype).replace('torch.', '')} {'x'.join(map(str, shape))}"


def bench_device(timer: Timer, shape: tuple[int, int, int, int], device: torch.device) -> list[Row]:
    """Ours (out of place, ``out=``, in place, full call) against ``copy_`` and ``clone()``."""
    n, _, h, w = shape
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(shape, generator=g, device=device)
    y = torch.randint(0, 1000, (n,), generator=g, device=device)
    buf, work = torch.empty_like(x), x.clone()
    p = cutmix.sample_cutmix(n, (h, w), generator=g, device=device)
    mix = cutmix.CutMix(1.0, num_classes=1000)
    cases: dict[str, Case] = {
        "copy_": lambda: buf.copy_(x),
        "clone()": lambda: x.clone(),
        "cut_images": lambda: F.cut_images(x, p),
        "cut_images out=": lambda: F.cut_images(x, p, out=buf),
        "cut_images inplace": lambda: F.cut_images(work, p, inplace=True),
        "CutMix() call (sampling, images, targets)": lambda: mix(x, y, generator=g),
    }
    rows = timer.rows(timer.run(cases), str(device), shape_str(shape, x.dtype))
    for r in rows:
        if r.case in ("copy_", "clone()"):
            r.kind = "ref"
    set_ratios(rows, {"copy": "copy_", "clone": "clone()"})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Time ours against copy and clone; print a table (and write JSON with ``--json``)."""
    ap = argparse.ArgumentParser(prog="cutmix bench", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto (cpu, and cuda if any)")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: as is)"
    )
    ap.add_argument("--shape", default="128,3,224,224", help="N,C,H,W of the f32 batch")
    ap.add_argument("--reps", type=int, default=15, help="timed rounds per case (median)")
    ap.add_argument("--smoke", action="store_true", help="a tiny batch, 3 rounds: checks it runs")
    ap.add_argument("--json", default=None, help="write the rows here")
    ap.add_argument("--quiet", action="store_true", help="print nothing")
    args = ap.parse_args(argv)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print(
            "cutmix: error: bench: expected --device cuda to find CUDA, got none", file=sys.stderr
        )
        return 2
    try:
        shape = tuple(int(v) for v in args.shape.split(","))
        if len(shape) != 4 or min(shape) < 1:
            raise ValueError
    except ValueError:
        print(
            f"cutmix: error: bench: expected --shape N,C,H,W, got {args.shape!r}", file=sys.stderr
        )
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.smoke:
        shape, reps = (8, 3, 16, 16), 3
    else:
        reps = args.reps
    rows: list[Row] = []
    for dev in devices:
        timer = Timer(torch.device(dev), reps=reps, warmup=2, budget_s=4.0)
        rows += bench_device(timer, shape, torch.device(dev))
    if not args.quiet:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads")
        print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
