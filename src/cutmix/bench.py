"""Side-by-side speed of cutmix and its peers: ``cutmix bench`` / ``python -m benchmarks.run``.

Every section times its cases in one process, alternating them round by round after a warm-up,
and reports medians with ratios to ``copy_`` into a preallocated buffer (``×copy``), to
``clone()`` (``×clone``) and to the fastest installed peer doing per-batch CutMix (``×peer``).
Peers (torchvision v2 ``CutMix``, timm ``Mixup`` batch/elem, kornia ``RandomCutMixV2``) are used
only when installed. On CUDA the cases are timed with CUDA events, ``set_sync_debug_mode("error")``
checks that sampling on the device and applying never synchronise, and copies are reported in GB/s.

Example:
    >>> from cutmix.bench import main
    >>> main(["--smoke", "--quiet"])
    0
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

import cutmix
from cutmix import _native
from cutmix.functional import _images as F

__all__ = ["main"]

Case = Callable[[], Any]
# Marks the rows of "auto" without the C kernel (CUTMIX_NATIVE=0, or no C compiler).
EAGER = "[auto without native]"


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


# --------------------------------------------------------------------------------------------
# timing


class Timer:
    """Alternating (order shuffled each round), warmed-up, median timing on CPU or CUDA (events)."""

    def __init__(
        self,
        device: torch.device,
        reps: int,
        warmup: int,
        budget_s: float,
        before: Case | None = None,
    ) -> None:
        self.device, self.reps, self.warmup, self.budget_s = device, reps, warmup, budget_s
        self.before = before  # run untimed before every timed call (e.g. a parallel op)
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
            caps[name] = max(3, min(self.reps, int(self.budget_s / max(first, 1e-9))))
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


# --------------------------------------------------------------------------------------------
# peers (optional packages, per-batch CutMix)


def _peers(num_classes: int) -> dict[str, Callable[[torch.Tensor, torch.Tensor], Any]]:
    peers: dict[str, Callable[[torch.Tensor, torch.Tensor], Any]] = {}
    try:
        from torchvision.transforms import v2

        tv = v2.CutMix(alpha=1.0, num_classes=num_classes)
        peers["torchvision v2 CutMix"] = lambda x, y: tv(x, y)
    except Exception:  # pragma: no cover - optional peer
        pass
    try:
        from timm.data import Mixup

        for mode in ("batch", "elem"):
            m = Mixup(
                mixup_alpha=0.0,
                cutmix_alpha=1.0,
                mode=mode,
                label_smoothing=0.0,
                num_classes=num_classes,
            )
            peers[f"timm Mixup {mode} (in place)"] = m
    except Exception:  # pragma: no cover - optional peer
        pass
    try:
        import kornia.augmentation as K

        k = K.RandomCutMixV2(data_keys=["input", "class"], use_correct_lambda=True)
        peers["kornia RandomCutMixV2"] = lambda x, y: k(x, y)
    except Exception:  # pragma: no cover - optional peer
        pass
    return peers


def _peer_case(fn: Callable[..., Any], x: torch.Tensor, y: torch.Tensor) -> Case | str:
    """A timed callable, or the reason the peer cannot run this input."""
    try:
        fn(x, y)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
    return lambda: fn(x, y)


# --------------------------------------------------------------------------------------------
# sections


def _ms(timer: Timer, case: str) -> list[float]:
    return [1e3 * t for t in timer.samples.get(case, [])]


def _shape_str(shape: tuple[int, ...], dtype: torch.dtype) -> str:
    return f"{str(dtype).replace('torch.', '')} {'x'.join(map(str, shape))}"


def _paired_ratio(row: Row, ref: Row) -> float:
    """Median over rounds of ``row / ref`` timed in the same round (k-th sample = k-th round).

    Pairing cancels the drift of a shared machine between rounds (±20 % over minutes here); with
    no per-round times it is the ratio of the medians.
    """
    k = min(len(row.times_ms), len(ref.times_ms))
    if k == 0:
        return row.median_ms / ref.median_ms
    return statistics.median(a / b for a, b in zip(row.times_ms[:k], ref.times_ms[:k]))


def _ratios(rows: list[Row]) -> None:
    by = {r.case: r for r in rows}
    peers = [r for r in rows if r.kind == "peer" and r.n > 0]
    fastest = min(peers, key=lambda r: r.median_ms) if peers else None
    for r in rows:
        if r.n == 0:
            continue
        if "copy_" in by:
            r.ratios["copy"] = _paired_ratio(r, by["copy_"])
        if "clone()" in by:
            r.ratios["clone"] = _paired_ratio(r, by["clone()"])
        if fastest is not None:
            r.ratios["peer"] = _paired_ratio(r, fastest)


def bench_images(
    timer: Timer,
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
    device: torch.device,
    peers: bool,
    num_classes: int = 1000,
    compile_rows: bool = False,
) -> list[Row]:
    """Our kernels (per-sample and per-batch, out of place, out=, in place) vs copy/clone/peers.

    With ``compile_rows``: the opt-in ``strategy="compiled"`` (out of place, ``out=`` and the full
    ``CutMix(strategy="compiled")`` call) and a user's own ``torch.compile`` of ``cut_images``
    (where ``"auto"`` picks the masked kernel); each note gives the one-time compile seconds.
    """
    n, _, h, w = shape
    g = torch.Generator(device=device).manual_seed(0)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, shape, generator=g, device=device, dtype=torch.uint8)
    else:
        x = torch.rand(shape, generator=g, device=device).to(dtype)
    work = x.clone()  # in-place cases and timm (which mixes in place) write here
    buf = torch.empty_like(x)
    y = torch.randint(0, num_classes, (n,), generator=g, device=device)
    ps = cutmix.sample_cutmix(n, (h, w), mode="sample", generator=g, device=device)
    pb = cutmix.sample_cutmix(n, (h, w), mode="batch", generator=g, device=device)
    mix = cutmix.CutMix(1.0, num_classes=num_classes)
    mix_b = cutmix.CutMix(1.0, num_classes=num_classes, mode="batch")
    cases: dict[str, Case] = {
        "copy_": lambda: buf.copy_(x),
        "clone()": lambda: x.clone(),
        "cut_images sample": lambda: F.cut_images(x, ps),
        "cut_images sample out=": lambda: F.cut_images(x, ps, out=buf),
        "cut_images sample inplace": lambda: F.cut_images(work, ps, inplace=True),
        "cut_images batch": lambda: F.cut_images(x, pb),
        "CutMix() sample (+sample, targets)": lambda: mix(x, y, generator=g),
        "CutMix() batch (+sample, targets)": lambda: mix_b(x, y, generator=g),
    }
    notes: dict[str, str] = {}
    for s in F.STRATEGIES:
        if s == "auto":
            continue
        try:
            F._pick_strategy(x, s)
        except ValueError:
            continue
        if s == "native" and not _native.available():
            notes[f"cut_images sample [{s}]"] = "not run: the C kernel did not build here"
            continue
        cases[f"cut_images sample [{s}]"] = lambda s=s: F.cut_images(x, ps, strategy=s)
    if device.type == "cpu":
        cases.update(_eager_cases(x, y, ps, buf, work, num_classes))
    if compile_rows:
        cases.update(_compiled_cases(x, y, ps, buf, num_classes, notes))
    kinds = {"copy_": "ref", "clone()": "ref"}
    if peers:
        for name, fn in _peers(num_classes).items():
            target = work if "timm" in name else x
            case = _peer_case(fn, target, y)
            if isinstance(case, str):
                notes[name] = case
            else:
                cases[name] = case
                kinds[name] = "peer"
    res = timer.run(cases)
    label = _shape_str(shape, dtype)
    rows = [
        Row("images", label, k, 1e3 * t, cnt, kinds.get(k, "ours"), times_ms=_ms(timer, k))
        for k, (t, cnt) in res.items()
    ]
    rows += [
        Row(
            "images",
            label,
            k,
            float("nan"),
            0,
            "ours" if "[" in k or "strategy=" in k else "peer",
            note=v,
        )
        for k, v in notes.items()
        if k not in res
    ]
    for r in rows:
        if r.case in res and r.case in notes:
            r.note = notes[r.case]
    _ratios(rows)
    if device.type == "cuda":
        nbytes = x.numel() * x.element_size()
        for r in rows:
            r.note = r.note or f"{2 * nbytes / (r.median_ms / 1e3) / 1e9:.0f} GB/s (r+w)"
    return rows


def _compiled_cases(
    x: torch.Tensor,
    y: torch.Tensor,
    ps: cutmix.MixParams,
    buf: torch.Tensor,
    num_classes: int,
    notes: dict[str, str],
) -> dict[str, Case]:
    """Cases that need torch.compile (inductor); compiled here, once, and timed afterwards."""
    size = ps.size
    mix_c = cutmix.CutMix(1.0, num_classes=num_classes, strategy="compiled")
    g = torch.Generator(device=x.device).manual_seed(1)

    def user_step(images: torch.Tensor, perm: torch.Tensor, lam: torch.Tensor, boxes: torch.Tensor):
        return F.cut_images(images, cutmix.MixParams(perm, lam, boxes, size))

    user = torch.compile(user_step, dynamic=False, fullgraph=True)
    candidates: dict[str, Case] = {
        "cut_images sample [compiled]": lambda: F.cut_images(x, ps, strategy="compiled"),
        "cut_images sample out= [compiled]": lambda: F.cut_images(
            x, ps, out=buf, strategy="compiled"
        ),
        "CutMix(strategy='compiled')() sample (+sample, targets)": lambda: mix_c(x, y, generator=g),
        "torch.compile(cut_images) by the user [masked]": lambda: user(
            x, ps.perm, ps.lam, ps.boxes
        ),
    }
    return _first_calls(candidates, notes, "first call (compile)")


def _first_calls(candidates: dict[str, Case], notes: dict[str, str], timed: str) -> dict[str, Case]:
    """Run each case once (it compiles or builds there); keep those that work, note the others.

    ``timed``: a note label for the first call's seconds, or "" for no note.
    """
    cases: dict[str, Case] = {}
    for name, fn in candidates.items():
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # no compiler here: report, do not fail the benchmark
            notes[name] = f"not run: {type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
            continue
        if timed:
            notes[name] = f"{timed} {time.perf_counter() - t0:.1f} s"
        cases[name] = fn
    return cases


def _eager_cases(
    x: torch.Tensor,
    y: torch.Tensor,
    ps: cutmix.MixParams,
    buf: torch.Tensor,
    work: torch.Tensor,
    num_classes: int,
) -> dict[str, Case]:
    """``"auto"`` as it runs without the C kernel (``CUTMIX_NATIVE=0``, or no C compiler)."""
    mix = cutmix.CutMix(1.0, num_classes=num_classes)
    g = torch.Generator(device=x.device).manual_seed(2)

    def without_native(fn: Case) -> Case:
        def run() -> Any:
            before = os.environ.get("CUTMIX_NATIVE")
            os.environ["CUTMIX_NATIVE"] = "0"
            try:
                return fn()
            finally:
                if before is None:
                    del os.environ["CUTMIX_NATIVE"]
                else:
                    os.environ["CUTMIX_NATIVE"] = before

        return run

    return {
        f"cut_images sample {EAGER}": without_native(lambda: F.cut_images(x, ps)),
        f"cut_images sample out= {EAGER}": without_native(lambda: F.cut_images(x, ps, out=buf)),
        f"cut_images sample inplace {EAGER}": without_native(
            lambda: F.cut_images(work, ps, inplace=True)
        ),
        f"CutMix() sample (+sample, targets) {EAGER}": without_native(
            lambda: mix(x, y, generator=g)
        ),
    }


def bench_sampling(timer: Timer, device: torch.device, ns: list[int]) -> list[Row]:
    """Cost of drawing params (``sample_cutmix`` / ``sample_mixup``) per call, vs N."""
    rows: list[Row] = []
    g = torch.Generator(device=device).manual_seed(0)
    for n in ns:
        cases: dict[str, Case] = {
            "sample_cutmix sample": lambda n=n: cutmix.sample_cutmix(
                n, (224, 224), generator=g, device=device
            ),
            "sample_cutmix pair p=0.5": lambda n=n: cutmix.sample_cutmix(
                n, (224, 224), mode="pair", p=0.5, generator=g, device=device
            ),
            "sample_cutmix batch": lambda n=n: cutmix.sample_cutmix(
                n, (224, 224), mode="batch", generator=g, device=device
            ),
            "sample_cutmix inside own_dominant": lambda n=n: cutmix.sample_cutmix(
                n, (224, 224), placement="inside", own_dominant=True, generator=g, device=device
            ),
            "sample_mixup alpha=0.2": lambda n=n: cutmix.sample_mixup(
                n, alpha=0.2, generator=g, device=device
            ),
        }
        res = timer.run(cases)
        for k, (t, cnt) in res.items():
            rows.append(Row("sampling", f"N={n}", k, 1e3 * t, cnt, note=f"{t * 1e6:.0f} µs"))
    return rows


def bench_targets(
    timer: Timer, n: int, classes: int, device: torch.device, repeat: int = 1
) -> list[Row]:
    """Soft targets with per-sample λ: our fused scatter vs timm's and torchvision's.

    With ``repeat > 1`` every case runs ``repeat`` times back to back and is reported per call: the
    (N, C) buffers then stay in cache, as when a loop times one call in isolation. With
    ``repeat == 1`` the cases alternate and each call finds its buffers evicted by the others.
    """
    g = torch.Generator(device=device).manual_seed(0)
    y = torch.randint(0, classes, (n,), generator=g, device=device)
    p = cutmix.sample_cutmix(n, (32, 32), generator=g, device=device)
    src = torch.rand(n, classes, generator=g, device=device)
    buf = torch.empty(n, classes, device=device)
    out = torch.empty(n, classes, device=device)
    cases: dict[str, Case] = {
        "copy_": lambda: buf.copy_(src),  # one (N, C) float32 copy: the reference for ×copy
        "mix_labels": lambda: F.mix_labels(y, p, classes),
        "mix_labels smoothing=0.1": lambda: F.mix_labels(y, p, classes, label_smoothing=0.1),
        "mix_labels out=": lambda: F.mix_labels(y, p, classes, out=out),
    }
    kinds = {"copy_": "ref"}
    try:
        from timm.data.mixup import mixup_target

        lam = p.lam.view(-1, 1)  # timm's elem mode passes an (N, 1) tensor λ
        cases["timm mixup_target"] = lambda: mixup_target(y, classes, lam, 0.0)
        cases["timm mixup_target smoothing=0.1"] = lambda: mixup_target(y, classes, lam, 0.1)
        kinds["timm mixup_target"] = kinds["timm mixup_target smoothing=0.1"] = "peer"
    except Exception:  # pragma: no cover - optional peer
        pass
    try:
        from torchvision.transforms import v2

        tv = v2.CutMix(num_classes=classes)
        cases["torchvision CutMix._mixup_label"] = lambda: tv._mixup_label(y, lam=0.7)
        kinds["torchvision CutMix._mixup_label"] = "peer"
    except Exception:  # pragma: no cover - optional peer
        pass
    if repeat > 1:
        # Each result is dropped before the next call, as in a training loop: holding all of them
        # would make every call take new memory (fresh pages) instead of reusing the last one's.
        cases = {k: (lambda fn=fn: _repeat(fn, repeat)) for k, fn in cases.items()}
    res = timer.run(cases)
    label = f"N={n} C={classes}" + (f", {repeat} calls back to back" if repeat > 1 else "")
    rows = [
        Row(
            "targets",
            label,
            k,
            1e3 * t / repeat,
            cnt,
            kinds.get(k, "ours"),
            times_ms=[v / repeat for v in _ms(timer, k)],
        )
        for k, (t, cnt) in res.items()
    ]
    _ratios(rows)
    return rows


def _repeat(fn: Case, times: int) -> None:
    for _ in range(times):
        fn()


class _SmallCifarNet(nn.Module):
    """Fallback model when the training tool's models are unavailable: a tiny ResNet-like net."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        self.block = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
        )
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(x + self.block(x))
        return self.head(x.mean((2, 3)))


def _cifar_model(device: torch.device, tiny: bool) -> tuple[nn.Module, str]:
    if not tiny:
        try:
            from cutmix.train.config import TrainConfig
            from cutmix.train.models import build_model

            name = TrainConfig.model if isinstance(TrainConfig.model, str) else "tutorial"
            model = build_model(name, num_classes=10, in_channels=3, image_size=32)
            return model.to(device), f"cutmix.train.models '{name}' (the default)"
        except Exception:
            pass
    return _SmallCifarNet().to(device), "bench-local small ResNet-like net"


def bench_train(timer: Timer, n: int, device: torch.device, tiny: bool) -> list[Row]:
    """One SGD step of the default CIFAR model with and without CutMix (batch n, 3×32×32)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=g, device=device)
    y = torch.randint(0, 10, (n,), generator=g, device=device)
    model, name = _cifar_model(device, tiny)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    mix = cutmix.CutMix(1.0, num_classes=10)
    lossf = nn.functional.cross_entropy

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        lossf(model(images), targets).backward()
        opt.step()

    def with_cutmix() -> None:
        images, targets = mix(x, y, generator=g)
        step(images, targets)

    res = timer.run(
        {
            "step without CutMix": lambda: step(x, y),
            "step with CutMix": with_cutmix,
            # The step itself costs the same on mixed images with soft targets (measured): its
            # extra time is this call, which is timed far more precisely than a step (±10 %).
            "CutMix call alone": lambda: mix(x, y, generator=g),
        }
    )
    rows = [
        Row("train", f"{name}, batch {n}", k, 1e3 * t, cnt, times_ms=_ms(timer, k))
        for k, (t, cnt) in res.items()
    ]
    base = next(r for r in rows if r.case == "step without CutMix")
    for r in rows:
        r.ratios["without"] = _paired_ratio(r, base)
    return rows


def bench_scaling(
    timer: Timer, device: torch.device, ns: list[int], sides: list[int], n_fixed: int, side: int
) -> list[Row]:
    """Time vs N and vs H×W of out-of-place and out= per-sample CutMix; ns per byte of input."""
    rows: list[Row] = []
    shapes = [(n, 3, side, side) for n in ns] + [(n_fixed, 3, s, s) for s in sides]
    for shape in dict.fromkeys(shapes):
        n, _, h, w = shape
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.rand(shape, generator=g, device=device)
        buf = torch.empty_like(x)
        p = cutmix.sample_cutmix(n, (h, w), generator=g, device=device)
        res = timer.run(
            {
                "copy_": lambda x=x, buf=buf: buf.copy_(x),
                "cut_images": lambda x=x, p=p: F.cut_images(x, p),
                "cut_images out=": lambda x=x, p=p, buf=buf: F.cut_images(x, p, out=buf),
            }
        )
        nbytes = x.numel() * x.element_size()
        for k, (t, cnt) in res.items():
            r = Row("scaling", _shape_str(shape, x.dtype), k, 1e3 * t, cnt)
            r.ratios["ns/byte"] = t * 1e9 / nbytes
            r.note = f"{nbytes / 2**20:.1f} MiB"
            rows.append(r)
    return rows


def check_no_sync(device: torch.device) -> dict[str, str]:
    """On CUDA: sampling on the device, applying and soft targets under sync_debug_mode='error'."""
    if device.type != "cuda":
        return {"skipped": "no CUDA device"}
    out: dict[str, str] = {}
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(64, 3, 64, 64, device=device)
    y = torch.randint(0, 10, (64,), device=device)
    checks: dict[str, Callable[[], Any]] = {
        "sample_cutmix": lambda: cutmix.sample_cutmix(64, (64, 64), generator=g, device=device),
        "sample_mixup": lambda: cutmix.sample_mixup(64, generator=g, device=device),
    }
    p = cutmix.sample_cutmix(64, (64, 64), generator=g, device=device)
    pm = cutmix.sample_mixup(64, generator=g, device=device)
    buf = torch.empty_like(x)
    checks.update(
        {
            "cut_images": lambda: F.cut_images(x, p),
            "cut_images out=": lambda: F.cut_images(x, p, out=buf),
            "cut_images inplace": lambda: F.cut_images(buf, p, inplace=True),
            "mix_images": lambda: F.mix_images(x, pm),
            "mix_labels": lambda: F.mix_labels(y, p, 10),
        }
    )
    for name, fn in checks.items():
        fn()  # warm-up outside the check (lazy init may sync once)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            fn()
            out[name] = "no sync"
        except RuntimeError as exc:
            out[name] = f"SYNC: {str(exc).splitlines()[0][:80]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return out


# --------------------------------------------------------------------------------------------
# environment, goals, output


def environment(device: torch.device, threads: int) -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    thp = "?"
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().strip()
    except OSError:
        pass
    maps = ""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        pass
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "?"
    alloc = [name for name in ("jemalloc", "tcmalloc", "mimalloc") if name in maps]
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("MALLOC_", "THP_", "LD_PRELOAD", "OMP_", "MKL_", "PYTORCH_"))
    }
    info: dict[str, Any] = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cutmix": cutmix.__version__,
        "device": str(device),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "allocator": ("+".join(alloc) if alloc else f"glibc malloc ({libc})"),
        "allocator_env": env,
        "transparent_hugepage": thp,
        "peers": {},
    }
    for mod in ("torchvision", "timm", "kornia"):
        try:
            info["peers"][mod] = __import__(mod).__version__
        except Exception:
            info["peers"][mod] = None
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        info["gpu"] = prop.name
        clock = getattr(prop, "memory_clock_rate", None)
        bus = getattr(prop, "memory_bus_width", None)
        if clock and bus:  # kHz and bits, double data rate
            info["gpu_peak_bandwidth_GBps"] = round(2 * clock * 1e3 * bus / 8 / 1e9)
    return info


def _find(rows: list[Row], section: str, shape: str, case: str) -> Row | None:
    return next(
        (r for r in rows if r.section == section and r.shape.startswith(shape) and r.case == case),
        None,
    )


def goals(rows: list[Row]) -> list[dict[str, Any]]:
    """The issue's goal table evaluated on the measured rows (missing cases are skipped)."""
    big, small, u8 = "float32 128x3x224x224", "float32 256x3x32x32", "uint8 128x3x224x224"
    spec = [
        ("out of place, f32 128x3x224², ×clone", big, "cut_images sample", "clone", 1.1),
        ("out= buffer, f32 128x3x224², ×copy", big, "cut_images sample out=", "copy", 1.3),
        ("inplace, f32 128x3x224², ×copy", big, "cut_images sample inplace", "copy", 1.2),
        ("out of place, f32 256x3x32², ×copy", small, "cut_images sample", "copy", 2.5),
        ("out of place, uint8 128x3x224², ×copy", u8, "cut_images sample", "copy", 1.5),
    ]
    out: list[dict[str, Any]] = []
    for variant, suffix in (("", ""), (f" {EAGER}", " (without the C kernel)")):
        for what, shape, case, ref, goal in spec:
            name = case + variant
            r = _find(rows, "images", shape, name)
            if r is not None and ref in r.ratios:
                val = r.ratios[ref]
                out.append(
                    {"goal": what + suffix, "measured": val, "target": goal, "met": val <= goal}
                )
    for shape, when in (
        ("N=128 C=21843", "alternated"),
        ("N=128 C=21843, 5 calls back to back", "back to back"),
    ):
        section = [r for r in rows if r.section == "targets" and r.shape == shape]
        by = {r.case: r for r in section}
        for case in ("mix_labels", "mix_labels out="):
            if case in by:
                ms = by[case].median_ms
                out.append(
                    {
                        "goal": f"soft targets {shape.split(',')[0]} {when}: {case}, ms",
                        "measured": ms,
                        "target": 1.0,
                        "met": ms <= 1.0,
                    }
                )
        if "mix_labels" in by and "timm mixup_target" in by:
            val = _paired_ratio(by["mix_labels"], by["timm mixup_target"])
            out.append(
                {
                    "goal": f"soft targets {when}: mix_labels ×timm",
                    "measured": val,
                    "target": 0.25,
                    "met": val <= 0.25,
                }
            )
    r = _find(rows, "train", "", "step with CutMix")
    if r is not None:
        val = r.ratios["without"]
        out.append(
            {
                "goal": "SGD step with/without CutMix (paired rounds)",
                "measured": val,
                "target": 1.03,
                "met": val <= 1.03,
            }
        )
        alone = _find(rows, "train", "", "CutMix call alone")
        if alone is not None:
            val = 1.0 + alone.ratios["without"]
            out.append(
                {
                    "goal": "SGD step with/without CutMix (1 + CutMix call / step)",
                    "measured": val,
                    "target": 1.03,
                    "met": val <= 1.03,
                }
            )
    for shape in sorted({r.shape for r in rows if r.section == "images"}):
        section = [r for r in rows if r.section == "images" and r.shape == shape]
        peers = [r for r in section if r.kind == "peer" and r.n]
        if not peers:
            continue
        fastest = min(peers, key=lambda r: r.median_ms)
        for r in section:
            ours = r.case.startswith(("cut_images sample", "CutMix() sample"))
            if ours and ("[" not in r.case or EAGER in r.case):
                val = r.ratios.get("peer", r.median_ms / fastest.median_ms)
                out.append(
                    {
                        "goal": f"{shape} {r.case} < fastest peer ({fastest.case})",
                        "measured": val,
                        "target": 1.0,
                        "met": val < 1.0,
                    }
                )
    return out


def format_table(rows: list[Row]) -> str:
    cols = ["copy", "clone", "peer", "without", "ns/byte"]
    used = [c for c in cols if any(c in r.ratios for r in rows)]
    head = f"| section | shape | case | median ms | n | {' | '.join('×' + c if c != 'ns/byte' else c for c in used)} | note |"
    lines = [head, "|" + "---|" * (5 + len(used) + 1)]
    for r in rows:
        vals = [f"{r.ratios[c]:.2f}" if c in r.ratios else "" for c in used]
        ms = "n/a" if r.n == 0 else f"{r.median_ms:.3f}"
        lines.append(
            f"| {r.section} | {r.shape} | {r.case} | {ms} | {r.n} | {' | '.join(vals)} | {r.note} |"
        )
    return "\n".join(lines)


def format_goals(gs: list[dict[str, Any]]) -> str:
    lines = ["| goal | measured | target | met |", "|---|---|---|---|"]
    for g in gs:
        lines.append(
            f"| {g['goal']} | {g['measured']:.3f} | {g['target']} | {'yes' if g['met'] else 'NO'} |"
        )
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="cutmix bench", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when available)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--reps", type=int, default=21, help="timed rounds per case (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--budget", type=float, default=4.0, help="max seconds per slow case")
    ap.add_argument(
        "--sections",
        default="sampling,images,targets,train,scaling",
        help="comma list of sampling, images, targets, train, scaling",
    )
    ap.add_argument(
        "--no-compile",
        action="store_true",
        help="skip the torch.compile rows (on by default except with --smoke)",
    )
    ap.add_argument("--no-peers", action="store_true", help="skip torchvision/timm/kornia")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 3 reps: checks it runs")
    ap.add_argument("--json", default=None, help="write the rows, goals and environment here")
    ap.add_argument("--quiet", action="store_true", help="print nothing")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables (and write JSON with ``--json``). Returns 0."""
    args = _parse(argv)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("cutmix bench: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if args.smoke:
        timer = Timer(device, reps=3, warmup=1, budget_s=0.2)
        shapes = [((4, 3, 16, 16), torch.float32), ((4, 3, 96, 96), torch.uint8)]
        target_sizes = [(8, 100)]
        train_n, ns, sides, n_fixed, side = 8, [2, 4], [16, 32], 2, 16
        sample_ns = [4]
    else:
        timer = Timer(device, reps=args.reps, warmup=args.warmup, budget_s=args.budget)
        shapes = [
            ((128, 3, 224, 224), torch.float32),
            ((256, 3, 32, 32), torch.float32),
            ((64, 3, 512, 512), torch.float32),
            ((128, 3, 224, 224), torch.uint8),
            ((128, 3, 224, 224), torch.bfloat16),
        ]
        target_sizes = [(128, 1000), (128, 21843)]
        train_n, ns, sides, n_fixed, side = 128, [16, 32, 64, 128], [56, 112, 224, 448], 32, 224
        sample_ns = [4, 128, 256]
    compile_rows = not (args.smoke or args.no_compile)
    rows: list[Row] = []
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if "sampling" in sections:
        log("sampling ...")
        rows += bench_sampling(timer, device, sample_ns)
    if "images" in sections:
        for shape, dtype in shapes:
            log(f"images {_shape_str(shape, dtype)} ...")
            rows += bench_images(
                timer, shape, dtype, device, peers=not args.no_peers, compile_rows=compile_rows
            )
    if "targets" in sections:
        for n, c in target_sizes:
            log(f"targets N={n} C={c} ...")
            rows += bench_targets(timer, n, c, device)
        if not args.smoke:
            n, c = target_sizes[-1]
            log(f"targets N={n} C={c}, back to back ...")
            rows += bench_targets(timer, n, c, device, repeat=5)
    if "train" in sections:
        log("train step ...")
        rows += bench_train(timer, train_n, device, tiny=args.smoke)
    if "scaling" in sections:
        log("scaling ...")
        rows += bench_scaling(timer, device, ns, sides, n_fixed, side)
    env = environment(device, torch.get_num_threads())
    syncs = check_no_sync(device)
    gs = goals(rows)
    if not args.quiet:
        print(json.dumps({k: v for k, v in env.items()}, indent=1))
        print(format_table(rows))
        print()
        print(format_goals(gs))
        print("sync checks:", syncs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "environment": env,
                    "rows": [asdict(r) for r in rows],
                    "goals": gs,
                    "sync_checks": syncs,
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
