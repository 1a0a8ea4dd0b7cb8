"""The C kernels against PyTorch's (parallel) eager kernels at several intra-op thread counts.

``python -m benchmarks.threads [--threads 1 2] [--rounds 15]`` times, per thread count and
shape, ``cut_images`` out of place, into ``out=`` and in place with the C kernel and with the
eager kernel ``"auto"`` takes without it (``CUTMIX_NATIVE=0``), and ``mix_labels`` at C = 21,843
with and without the C kernel. Cases alternate in a new random order every round; before every timed
call a parallel PyTorch op runs, as in a training loop (its OpenMP threads are still spinning
when the next call starts). Prints medians in ms and what ``"auto"`` picks there. This is the
measurement behind the in-place size rule (row 12) in ``cutmix.functional._route``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch

from cutmix import _native
from cutmix.bench import Timer
from cutmix.functional import _images as F
from cutmix.params import sample_cutmix

SHAPES = [
    ((128, 3, 224, 224), torch.float32),
    ((256, 3, 32, 32), torch.float32),
    ((128, 3, 64, 64), torch.float32),
    ((128, 3, 80, 80), torch.float32),
    ((128, 3, 96, 96), torch.float32),
    ((128, 3, 112, 112), torch.float32),
    ((128, 3, 160, 160), torch.float32),
    ((128, 3, 160, 160), torch.uint8),
    ((128, 3, 224, 224), torch.uint8),
    ((64, 3, 512, 512), torch.uint8),
]


def _without_native(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        os.environ["CUTMIX_NATIVE"] = "0"
        try:
            return fn()
        finally:
            del os.environ["CUTMIX_NATIVE"]

    return run


def _image_cases(
    x: torch.Tensor, p, buf: torch.Tensor, work: torch.Tensor
) -> dict[str, Callable[[], object]]:
    return {
        "native": lambda: F.cut_images(x, p, strategy="native"),
        "eager": _without_native(lambda: F.cut_images(x, p)),
        "native out=": lambda: F.cut_images(x, p, out=buf, strategy="native"),
        "eager out=": _without_native(lambda: F.cut_images(x, p, out=buf)),
        # The C paste directly: "native" itself runs the loop in place for large samples.
        "C in place": lambda: _native.cut_rows(work, p.perm, p.boxes, None),
        "eager in place": _without_native(lambda: F.cut_images(work, p, inplace=True)),
    }


def _target_cases(y: torch.Tensor, p, c: int, out: torch.Tensor) -> dict[str, Callable[[], object]]:
    def with_c_kernel() -> object:
        # mix_labels as with one thread (the C kernel), whatever the thread count now
        real = F._native_targets
        F._native_targets = lambda *a: True  # type: ignore[assignment]
        try:
            return F.mix_labels(y, p, c, out=out)
        finally:
            F._native_targets = real  # type: ignore[assignment]

    return {
        "C kernel": with_c_kernel,
        "PyTorch": _without_native(lambda: F.mix_labels(y, p, c, out=out)),
    }


def _time(cases: dict[str, Callable[[], object]], rounds: int, busy: torch.Tensor) -> dict:
    """Median ms per case, alternated; a parallel op (untimed) before every call."""
    timer = Timer(torch.device("cpu"), rounds, 1, budget_s=1e9, before=lambda: busy.mul_(1.0))
    return {k: 1e3 * t for k, (t, _) in timer.run(cases).items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    os.environ.pop("CUTMIX_NATIVE", None)
    busy = torch.rand(2000, 2000)
    print(
        "| threads | shape | native | eager (auto without native) | native out= | eager out= "
        "| C in place | eager in place | auto picks (out of place / in place) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for shape, dtype in SHAPES:
            g = torch.Generator().manual_seed(0)
            x = (torch.rand(shape, generator=g) * 255).to(dtype)
            buf, work = torch.empty_like(x), x.clone()
            p = sample_cutmix(shape[0], shape[2:], generator=g)
            cases = _image_cases(x, p, buf, work)
            ms = _time(cases, args.rounds, busy)
            name = f"{str(dtype).removeprefix('torch.')} {'x'.join(map(str, shape))}"
            cells = " | ".join(f"{ms[k]:.2f}" for k in cases)
            picks = f"{F._route(x, 'auto', False, None)} / {F._route(x, 'auto', True, None)}"
            print(f"| {threads} | {name} | {cells} | {picks} |", flush=True)
    print()
    print("| threads | mix_labels N=128 C=21843 | C kernel | PyTorch | default uses C |")
    print("|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        n, c = 128, 21843
        y = torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(0))
        p = sample_cutmix(n, (32, 32), generator=torch.Generator().manual_seed(1))
        out = torch.empty(n, c)
        ms = _time(_target_cases(y, p, c, out), args.rounds, busy)
        uses = F._native_targets(y, p.lam, out)
        print(f"| {threads} | out= | {ms['C kernel']:.3f} | {ms['PyTorch']:.3f} | {uses} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
