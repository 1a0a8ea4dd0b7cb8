"""Differential tests against peers: timm, torchvision v2 and kornia (each skipped when absent).

For the same partner, box and λ (recorded from the peer's own call) the mixed images are bitwise
equal and the soft targets within one float32 ulp of timm's (two with label smoothing); the box sampler matches timm's geometry
in distribution (KS and χ² over 10k draws per α on a non-square size).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import cutmix
from cutmix import MixParams
from cutmix.functional import STRATEGIES, cut_images, mix_images, mix_labels

N, C, H, W = 6, 3, 24, 40
CLASSES = 5


def _batch(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(N, C, H, W, generator=g) * 255).to(dtype)
    y = torch.randint(0, CLASSES, (N,), generator=g)
    return x, y


def _within_ulps(a: torch.Tensor, b: torch.Tensor, ulps: int = 1) -> bool:
    a, b = a.float(), b.float()
    big = torch.maximum(a.abs(), b.abs())
    ulp = torch.nextafter(big, torch.full_like(big, float("inf"))) - big
    return bool(((a - b).abs() <= ulps * ulp).all())


def _within_one_ulp(a: torch.Tensor, b: torch.Tensor) -> bool:
    return _within_ulps(a, b, 1)


def _boxes(rows):
    return torch.tensor(rows, dtype=torch.int64).view(-1, 4)


# --- timm ---------------------------------------------------------------------------------------------


def _record_timm_boxes(monkeypatch, mixup):
    """Wrap timm's box sampler: each call's (x1, y1, x2, y2) and corrected λ, in call order."""
    calls = []
    original = mixup.cutmix_bbox_and_lam

    def recording(*args, **kwargs):
        (yl, yh, xl, xh), lam = original(*args, **kwargs)
        calls.append(([int(xl), int(yl), int(xh), int(yh)], float(lam)))
        return (yl, yh, xl, xh), lam

    monkeypatch.setattr(mixup, "cutmix_bbox_and_lam", recording)
    return calls


@pytest.mark.parametrize("mode", ["elem", "pair", "batch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_timm_cutmix_bitwise_and_targets_within_one_ulp(monkeypatch, mode, dtype, smoothing):
    mixup = pytest.importorskip("timm.data.mixup")
    calls = _record_timm_boxes(monkeypatch, mixup)
    np.random.seed(0)
    timm_mix = mixup.Mixup(
        mixup_alpha=0.0,
        cutmix_alpha=1.0,
        mode=mode,
        label_smoothing=smoothing,
        num_classes=CLASSES,
    )
    x, y = _batch(torch.float32)  # timm's soft targets take the images' dtype: float32
    x = x.to(dtype) if dtype == torch.float32 else x.round().to(dtype)
    own = x.clone()
    if dtype == torch.uint8:  # timm's elem/pair write through x[i][...] views: any dtype works
        ref_x = own.clone()
        ref_x_float, ref_t = timm_mix(ref_x.float(), y)
        ref_x = ref_x_float.to(torch.uint8)
    else:
        ref_x, ref_t = timm_mix(own.clone(), y)
    # timm's partner of i is N - 1 - i; its boxes come in call order.
    perm = torch.arange(N).flip(0)
    if mode == "elem":
        rows = [c[0] for c in calls]
        lams = [c[1] for c in calls]
    elif mode == "pair":
        rows = [c[0] for c in calls] + [c[0] for c in calls][::-1]
        lams = [c[1] for c in calls] + [c[1] for c in calls][::-1]
    else:
        rows = [calls[0][0]] * N
        lams = [calls[0][1]] * N
    assert len(rows) == N
    p = MixParams(
        perm=perm, lam=torch.tensor(lams, dtype=torch.float32), boxes=_boxes(rows), size=(H, W)
    )
    for strategy in STRATEGIES:
        assert torch.equal(cut_images(x, p, strategy=strategy), ref_x), strategy
    got_t = mix_labels(y, p, CLASSES, label_smoothing=smoothing)
    # Unsmoothed: within one ulp. Smoothed, timm smooths the one-hot rows before mixing and we
    # after: two roundings apart at most (2 ulps over 200 seeds x 3 ε, measured).
    assert _within_ulps(got_t, ref_t, 1 if smoothing == 0 else 2)


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_timm_mixup_targets_within_one_ulp(mode):
    mixup = pytest.importorskip("timm.data.mixup")
    np.random.seed(1)
    timm_mix = mixup.Mixup(
        mixup_alpha=0.4, cutmix_alpha=0.0, mode=mode, label_smoothing=0.1, num_classes=CLASSES
    )
    x, y = _batch()
    ref_x, ref_t = timm_mix(x.clone(), y)
    # Recover λ per sample from timm's targets (the own class keeps λ(1-ε) + ε/C when the partner
    # differs), then blend with our kernel.
    lam = torch.empty(N)
    for i in range(N):
        j = N - 1 - i
        if y[i] == y[j]:
            lam[i] = 1.0
        else:
            lam[i] = ((ref_t[i, y[i]] - 0.1 / CLASSES) / 0.9).clamp(0, 1)
    p = MixParams(perm=torch.arange(N).flip(0), lam=lam, boxes=None, size=None)
    assert torch.allclose(mix_images(x, p), ref_x, atol=1e-3)
    assert torch.allclose(mix_labels(y, p, CLASSES, label_smoothing=0.1), ref_t, atol=1e-6)


def test_timm_fast_collate_bitwise(monkeypatch):
    mixup = pytest.importorskip("timm.data.mixup")
    calls = _record_timm_boxes(monkeypatch, mixup)
    np.random.seed(2)
    collate = mixup.FastCollateMixup(
        mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", label_smoothing=0.0, num_classes=CLASSES
    )
    x, y = _batch(torch.uint8)
    batch = [(x[i].clone(), int(y[i])) for i in range(N)]
    ref_x, ref_t = collate(batch)
    rows = [c[0] for c in calls]
    p = MixParams(
        perm=torch.arange(N).flip(0),
        lam=torch.tensor([c[1] for c in calls], dtype=torch.float32),
        boxes=_boxes(rows),
        size=(H, W),
    )
    assert torch.equal(cut_images(x, p), ref_x)
    assert _within_one_ulp(mix_labels(y, p, CLASSES), ref_t)


# --- torchvision v2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_torchvision_v2_cutmix_bitwise(monkeypatch, dtype):
    v2 = pytest.importorskip("torchvision.transforms.v2")
    tv = v2.CutMix(num_classes=CLASSES)
    seen = []
    original = tv.make_params

    def recording(flat_inputs):
        params = original(flat_inputs)
        seen.append(params)
        return params

    monkeypatch.setattr(tv, "make_params", recording)
    torch.manual_seed(3)
    x, y = _batch(dtype)
    for _ in range(5):
        seen.clear()
        ref_x, ref_t = tv(x, y)
        x1, y1, x2, y2 = seen[0]["box"]
        lam = float(seen[0]["lam_adjusted"])
        p = MixParams(
            perm=torch.arange(N).roll(1),  # torchvision pastes from x.roll(1, 0)
            lam=torch.full((N,), lam),
            boxes=_boxes([[x1, y1, x2, y2]] * N),
            size=(H, W),
        )
        for strategy in STRATEGIES:
            assert torch.equal(cut_images(x, p, strategy=strategy), ref_x)
        assert torch.allclose(mix_labels(y, p, CLASSES), ref_t, atol=1e-6)


# --- kornia -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32])
def test_kornia_cutmix_v2_bitwise(dtype):
    K = pytest.importorskip("kornia.augmentation")
    torch.manual_seed(4)
    x, y = _batch(dtype)
    for _ in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            aug = K.RandomCutMixV2(data_keys=["input", "class"], use_correct_lambda=True)
        ref_x, _ = aug(x.clone(), y)
        pr = aug._params
        crop = pr["crop_src"][0]  # (N, 4, 2) corners, inclusive
        x1, y1 = crop[:, 0, 0], crop[:, 0, 1]
        x2, y2 = crop[:, 2, 0] + 1, crop[:, 2, 1] + 1
        boxes = torch.stack([x1, y1, x2, y2], 1).round().to(torch.int64)
        p = MixParams(
            perm=pr["mix_pairs"][0].to(torch.int64),
            lam=torch.ones(N),
            boxes=boxes.clamp_min(0),
            size=(H, W),
        )
        for strategy in STRATEGIES:
            assert torch.equal(cut_images(x, p, strategy=strategy), ref_x)


# --- Box distributions: timm's geometry --------------------------------------------------------------


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def _chi2_homogeneity(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """χ² statistic and degrees of freedom of two samples of integer categories (5+ expected)."""
    cats, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    keep = cats[counts >= 10]
    ca = np.array([(a == c).sum() for c in keep] + [(~np.isin(a, keep)).sum()], dtype=float)
    cb = np.array([(b == c).sum() for c in keep] + [(~np.isin(b, keep)).sum()], dtype=float)
    if ca[-1] + cb[-1] == 0:
        ca, cb = ca[:-1], cb[:-1]
    tot = ca + cb
    ea, eb = tot * ca.sum() / tot.sum(), tot * cb.sum() / tot.sum()
    stat = float((((ca - ea) ** 2) / ea).sum() + (((cb - eb) ** 2) / eb).sum())
    return stat, len(tot) - 1


def _chi2_limit(df: int, z: float = 4.0) -> float:
    """Upper χ² quantile by Wilson-Hilferty (z = 4: p ≈ 3e-5)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_box_distribution_matches_timm(alpha):
    mixup = pytest.importorskip("timm.data.mixup")
    n, h, w = 10_000, 24, 40
    rng = np.random.RandomState(int(alpha * 10))
    np.random.seed(int(alpha * 10) + 1)
    ref = []
    for lam in rng.beta(alpha, alpha, size=n):
        yl, yh, xl, xh = mixup.rand_bbox((h, w), lam)
        ref.append([int(xl), int(yl), int(xh), int(yh)])
    ref = np.array(ref)
    g = torch.Generator().manual_seed(int(alpha * 100))
    ours = cutmix.sample_cutmix(n, (h, w), alpha=alpha, generator=g).boxes.numpy()
    ks_limit = 1.95 * math.sqrt(2 / n)  # two-sample KS at p = 0.001
    for k, name in enumerate(["x1", "y1", "x2", "y2"]):
        assert _ks(ours[:, k], ref[:, k]) < ks_limit, name
        stat, df = _chi2_homogeneity(ours[:, k], ref[:, k])
        assert stat < _chi2_limit(df), (name, stat, df)
    area_ours = (ours[:, 2] - ours[:, 0]) * (ours[:, 3] - ours[:, 1])
    area_ref = (ref[:, 2] - ref[:, 0]) * (ref[:, 3] - ref[:, 1])
    assert _ks(area_ours, area_ref) < ks_limit
    width_ours, width_ref = ours[:, 2] - ours[:, 0], ref[:, 2] - ref[:, 0]
    stat, df = _chi2_homogeneity(width_ours, width_ref)
    assert stat < _chi2_limit(df), ("width", stat, df)
