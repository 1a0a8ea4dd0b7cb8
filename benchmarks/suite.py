"""The sections of the full benchmark: images, soft targets, sampling, a training step, scaling.

Each section times its cases side by side in one process (:class:`cutmix.bench.Timer`: warm-up,
then rounds in a new seeded order each) and returns :class:`cutmix.bench.Row` objects with ratios
paired by round: ``×copy`` (a ``copy_`` into a preallocated buffer), ``×clone`` (``clone()``),
``×peer`` (the fastest installed peer, :mod:`benchmarks.peers`). ``python -m benchmarks.run``
runs them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import cutmix
from benchmarks.peers import peer_case
from benchmarks.peers import peers as peer_adapters
from cutmix import _native
from cutmix.bench import Row, Timer, set_ratios, shape_str
from cutmix.functional import _images as F

Case = Callable[[], Any]
# Marks the rows of "auto" without the C kernel (CUTMIX_NATIVE=0, or no C compiler).
EAGER = "[auto without native]"


def ratios(rows: list[Row]) -> None:
    """×copy, ×clone and ×peer (the fastest peer of the section) for every timed row."""
    set_ratios(rows, {"copy": "copy_", "clone": "clone()"})
    timed_peers = [r for r in rows if r.kind == "peer" and r.n > 0]
    if timed_peers:
        fastest = min(timed_peers, key=lambda r: r.median_ms)
        set_ratios(rows, {"peer": fastest.case})


def bench_images(
    timer: Timer,
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
    device: torch.device,
    peers: bool,
    num_classes: int = 1000,
    peer_names: tuple[str, ...] | None = None,
    user_compile: bool = False,
    lean: bool = False,
) -> list[Row]:
    """Our kernels (per-sample and per-batch, out of place, out=, in place) vs copy/clone/peers.

    Each forced strategy gets a ``[loop]``, ``[masked]``, ``[native]`` row (what ``"auto"`` is
    compared with), and on CPU the ``[auto without native]`` rows. With ``user_compile``: a
    user's own ``torch.compile(cut_images)`` (its note gives the one-time compile seconds).
    ``lean``: only the cases issue 10's goals need (no per-batch mode, no ``out=`` without C).
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
            F._route(x, s, False, None)
        except ValueError:  # e.g. "loop" on CUDA
            continue
        if s == "native" and not _native.available():
            notes[f"cut_images sample [{s}]"] = "not run: the C kernel did not build here"
            continue
        cases[f"cut_images sample [{s}]"] = lambda s=s: F.cut_images(x, ps, strategy=s)
        cases[f"cut_images sample inplace [{s}]"] = lambda s=s: F.cut_images(
            work, ps, inplace=True, strategy=s
        )
    if device.type == "cpu":
        cases.update(_eager_cases(x, y, ps, buf, work, num_classes))
    if lean:
        for name in [k for k in cases if " batch " in k or k.endswith(" batch") or " out= [" in k]:
            del cases[name]
    if user_compile:
        cases.update(_user_compile_cases(x, ps, notes))
    kinds = {"copy_": "ref", "clone()": "ref"}
    if peers:
        for name, fn in peer_adapters(num_classes, peer_names).items():
            target = work if "timm" in name else x
            case = peer_case(fn, target, y)
            if isinstance(case, str):
                notes[name] = case
            else:
                cases[name] = case
                kinds[name] = "peer"
    res = timer.run(cases)
    label = shape_str(shape, dtype)
    rows = timer.rows(res, "images", label)
    for r in rows:
        r.kind = kinds.get(r.case, "ours")
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
    ratios(rows)
    if device.type == "cuda":
        nbytes = x.numel() * x.element_size()
        for r in rows:
            r.note = r.note or f"{2 * nbytes / (r.median_ms / 1e3) / 1e9:.0f} GB/s (r+w)"
    return rows


def _user_compile_cases(
    x: torch.Tensor, ps: cutmix.MixParams, notes: dict[str, str]
) -> dict[str, Case]:
    """A user's own ``torch.compile`` of ``cut_images`` (``"auto"`` is the where kernel there)."""
    size = ps.size

    def user_step(images: torch.Tensor, perm: torch.Tensor, lam: torch.Tensor, boxes: torch.Tensor):
        return F.cut_images(images, cutmix.MixParams(perm, lam, boxes, size))

    user = torch.compile(user_step, dynamic=False, fullgraph=True)
    name = "torch.compile(cut_images) by the user [where]"
    t0 = time.perf_counter()
    try:
        user(x, ps.perm, ps.lam, ps.boxes)
    except Exception as exc:  # no C++ compiler here: report, do not fail the benchmark
        notes[name] = f"not run: {type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
        return {}
    notes[name] = f"first call (compile) {time.perf_counter() - t0:.1f} s"
    return {name: lambda: user(x, ps.perm, ps.lam, ps.boxes)}


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
    rows = timer.rows(res, "targets", label)
    for r in rows:
        r.kind = kinds.get(r.case, "ours")
        r.median_ms /= repeat
        r.times_ms = [v / repeat for v in r.times_ms]
    ratios(rows)
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
    rows = timer.rows(res, "train", f"{name}, batch {n}")
    set_ratios(rows, {"without": "step without CutMix"})
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
            r = Row("scaling", shape_str(shape, x.dtype), k, 1e3 * t, cnt)
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
