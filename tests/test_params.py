"""Sampling: properties of every draw, and the statistics of many draws.

Statistical checks use fixed seeds (so they are deterministic) and tolerances stated next to them:
chi-square statistics below the 1 - 1e-4 quantile, means within 4.5 standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix.params import sample_beta, sample_cutmix, sample_mixup, sample_partners

MODES = ["batch", "pair", "sample"]


def chi2_critical(df: int, z: float = 3.719) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile; z = 3.719 is the 1 - 1e-4 point."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def chi2_uniform(values: torch.Tensor, categories: int) -> tuple[float, float]:
    counts = torch.bincount(values, minlength=categories).double()
    assert counts.shape[0] == categories, "a value outside the expected range"
    expected = values.numel() / categories
    stat = float(((counts - expected) ** 2 / expected).sum())
    return stat, chi2_critical(categories - 1)


def assert_derangement(perm: torch.Tensor, mode: str) -> None:
    n = perm.shape[0]
    idx = torch.arange(n)
    assert perm.dtype == torch.int64 and perm.shape == (n,)
    assert bool(((perm >= 0) & (perm < n)).all())
    if n == 1:
        assert perm.tolist() == [0]
        return
    assert bool((perm != idx).all()), "a sample is mixed with itself"
    if mode == "pair":
        mutual = perm[perm] == idx
        # An involution except, for odd n, exactly one sample mixed one way.
        assert int((~mutual).sum()) == n % 2
    else:
        assert sorted(perm.tolist()) == list(range(n)), "not a permutation"


# ----------------------------------------------------------------------------------------------
# Properties of one draw


@given(
    n=st.integers(1, 12),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    mode=st.sampled_from(MODES),
    placement=st.sampled_from(["center", "inside"]),
    alpha=st.sampled_from([0.01, 0.2, 1.0, 5.0]),
    p=st.sampled_from([0.0, 0.3, 1.0]),
    bounds=st.sampled_from([None, (0.0, 0.0), (0.1, 0.5), (0.3, 0.3), (0.0, 1.0)]),
    own_dominant=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_sample_cutmix_properties(n, h, w, mode, placement, alpha, p, bounds, own_dominant, seed):
    def draw():
        return sample_cutmix(
            n,
            (h, w),
            alpha=alpha,
            p=p,
            mode=mode,
            placement=placement,
            area_bounds=bounds,
            own_dominant=own_dominant,
            generator=torch.Generator().manual_seed(seed),
        )

    prm = draw()
    b = prm.boxes
    assert prm.size == (h, w) and prm.blend is None and prm.batch_size == n
    assert b.dtype == torch.int64 and b.shape == (n, 4)
    assert prm.lam.dtype == torch.float32 and prm.lam.shape == (n,)
    x1, y1, x2, y2 = b.unbind(1)
    # Inside the image, half-open and ordered.
    assert bool(((x1 >= 0) & (x1 <= x2) & (x2 <= w) & (y1 >= 0) & (y1 <= y2) & (y2 <= h)).all())
    area = (x2 - x1) * (y2 - y1)
    # λ is exactly the kept fraction of pixels, computed in float64 and rounded once.
    assert torch.equal(prm.lam, ((h * w - area).double() / (h * w)).float())
    assert_derangement(prm.perm, mode)
    if mode == "batch":
        assert bool((b == b[0]).all()) and bool((prm.lam == prm.lam[0]).all())
    if mode == "pair" and n > 1:
        mutual = prm.perm[prm.perm] == torch.arange(n)
        assert torch.equal(b[mutual], b[prm.perm][mutual])
        assert torch.equal(prm.lam[mutual], prm.lam[prm.perm][mutual])
    if p == 0.0 or n == 1:
        assert bool((area == 0).all()) and bool((prm.lam == 1).all())
    if own_dominant and bounds is None:
        assert bool((prm.lam >= 0.5).all())
    if bounds is not None and placement == "inside" and p == 1.0 and n > 1:
        # Unclipped boxes: the cut fraction never exceeds the upper bound (floors only shrink).
        assert bool((1 - prm.lam.double() <= bounds[1] + 1e-6).all())
    # Same seed, same params.
    again = draw()
    assert torch.equal(again.perm, prm.perm) and torch.equal(again.boxes, prm.boxes)
    assert torch.equal(again.lam, prm.lam)


@given(
    n=st.integers(1, 12),
    mode=st.sampled_from(MODES),
    alpha=st.sampled_from([0.01, 0.2, 1.0, 5.0]),
    p=st.sampled_from([0.0, 0.5, 1.0]),
    own_dominant=st.booleans(),
    size=st.sampled_from([None, (3, 4)]),
    seed=st.integers(0, 2**31 - 1),
)
def test_sample_mixup_properties(n, mode, alpha, p, own_dominant, size, seed):
    def draw():
        return sample_mixup(
            n,
            size,
            alpha=alpha,
            p=p,
            mode=mode,
            own_dominant=own_dominant,
            generator=torch.Generator().manual_seed(seed),
        )

    prm = draw()
    assert prm.boxes is None and prm.size == size
    assert prm.lam.dtype == torch.float32 and prm.lam.shape == (n,)
    assert bool(((prm.lam >= 0) & (prm.lam <= 1)).all())
    assert_derangement(prm.perm, mode)
    if mode == "batch":
        assert bool((prm.lam == prm.lam[0]).all())
    if mode == "pair" and n > 1:
        mutual = prm.perm[prm.perm] == torch.arange(n)
        assert torch.equal(prm.lam[mutual], prm.lam[prm.perm][mutual])
    if p == 0.0 or n == 1:
        assert bool((prm.lam == 1).all())
    if own_dominant:
        assert bool((prm.lam >= 0.5).all())
    again = draw()
    assert torch.equal(again.perm, prm.perm) and torch.equal(again.lam, prm.lam)


@given(n=st.integers(1, 40), mode=st.sampled_from(MODES), seed=st.integers(0, 2**31 - 1))
def test_sample_partners_is_a_derangement(n, mode, seed):
    perm = sample_partners(n, mode=mode, generator=torch.Generator().manual_seed(seed))
    assert_derangement(perm, mode)


@pytest.mark.parametrize("mode", MODES)
def test_partners_are_uniform_over_the_others(mode):
    # n = 5: every partner other than itself equally likely (1/4); 4000 draws, chi-square per row.
    n, draws = 5, 4000
    g = torch.Generator().manual_seed(11)
    perms = torch.stack([sample_partners(n, mode=mode, generator=g) for _ in range(draws)])
    for i in range(n):
        others = perms[:, i]
        assert bool((others != i).all())
        shifted = torch.where(others > i, others - 1, others)  # map the 4 others to 0..3
        stat, crit = chi2_uniform(shifted, n - 1)
        assert stat < crit, (mode, i, stat, crit)


def test_identity_params():
    prm = cutmix.identity_params(3, (4, 5))
    assert prm.perm.tolist() == [0, 1, 2] and prm.lam.tolist() == [1.0, 1.0, 1.0]
    assert prm.boxes.tolist() == [[0, 0, 0, 0]] * 3 and prm.size == (4, 5)
    assert cutmix.identity_params(2, None, boxes=False).boxes is None


def test_mixparams_to_and_as_dict():
    prm = sample_cutmix(3, (4, 5), generator=torch.Generator().manual_seed(0))
    d = prm.as_dict()
    assert d["perm"] == prm.perm.tolist() and d["boxes"] == prm.boxes.tolist()
    assert d["size"] == [4, 5] and d["blend"] is None
    moved = prm.to("cpu")
    assert torch.equal(moved.perm, prm.perm) and moved.size == prm.size


# ----------------------------------------------------------------------------------------------
# Beta draws


def test_sample_beta_range_mean_and_tiny_alpha():
    g = torch.Generator().manual_seed(5)
    lam = sample_beta(1.0, 20000, generator=g)
    assert lam.dtype == torch.float32 and bool(((lam >= 0) & (lam <= 1)).all())
    # Beta(1,1): mean 1/2, sd 1/sqrt(12); 4.5 standard errors.
    assert abs(float(lam.double().mean()) - 0.5) < 4.5 / math.sqrt(12 * 20000)
    lam2 = sample_beta(2.0, 20000, generator=g)
    # Beta(2,2): variance 1/20.
    assert abs(float(lam2.double().var()) - 0.05) < 0.004
    tiny = sample_beta(1e-4, 2000, generator=g)
    assert not bool(tiny.isnan().any())
    # Nearly all mass at the ends, both ends reached.
    assert float(((tiny < 1e-3) | (tiny > 1 - 1e-3)).double().mean()) > 0.99
    assert bool((tiny < 0.5).any()) and bool((tiny > 0.5).any())


# ----------------------------------------------------------------------------------------------
# Statistics over many draws (20k samples in one call each)

H, W, N = 5, 7, 20000


def test_center_placement_centres_are_uniform_over_every_pixel():
    # area_bounds=(0, 0) gives empty boxes at the drawn centre itself: x1 = x2 = cx, y1 = y2 = cy.
    prm = sample_cutmix(
        N, (H, W), area_bounds=(0.0, 0.0), generator=torch.Generator().manual_seed(1)
    )
    cx, cy = prm.boxes[:, 0], prm.boxes[:, 1]
    assert torch.equal(prm.boxes[:, 2], cx) and torch.equal(prm.boxes[:, 3], cy)
    stat, crit = chi2_uniform(cy * W + cx, H * W)  # every pixel, edges and corners included
    assert stat < crit, (stat, crit)


def expected_clipped_1d(cut: int, size: int) -> torch.Tensor:
    """Distribution of (x1, x2) of the paper's clipped box over a uniform centre, by enumeration."""
    probs = torch.zeros(size + 1, size + 1, dtype=torch.float64)
    for c in range(size):
        lo = min(max(c - cut // 2, 0), size)
        hi = min(max(c - cut // 2 + cut, 0), size)
        probs[lo, hi] += 1.0 / size
    return probs


@pytest.mark.parametrize("frac", [0.3, 0.6])
def test_center_placement_clipped_boxes_match_the_paper(frac):
    prm = sample_cutmix(
        N, (H, W), area_bounds=(frac, frac), generator=torch.Generator().manual_seed(2)
    )
    cut_w, cut_h = int(math.sqrt(frac) * W), int(math.sqrt(frac) * H)
    for lo, hi, cut, size in [(0, 2, cut_w, W), (1, 3, cut_h, H)]:
        probs = expected_clipped_1d(cut, size).flatten()
        counts = torch.bincount(
            prm.boxes[:, lo] * (size + 1) + prm.boxes[:, hi], minlength=(size + 1) ** 2
        ).double()
        assert bool((counts[probs == 0] == 0).all()), "a box the paper's algorithm cannot make"
        keep = probs > 0
        exp = probs[keep] * N
        stat = float(((counts[keep] - exp) ** 2 / exp).sum())
        assert stat < chi2_critical(int(keep.sum()) - 1), (stat, frac)
        # Both edges are reached: a box touching the left/top edge and one touching the right/bottom.
        assert int((prm.boxes[:, lo] == 0).sum()) > 0 and int((prm.boxes[:, hi] == size).sum()) > 0


def test_inside_placement_every_origin_reachable_and_uniform():
    frac = 0.3
    prm = sample_cutmix(
        N,
        (H, W),
        placement="inside",
        area_bounds=(frac, frac),
        generator=torch.Generator().manual_seed(3),
    )
    cut_w, cut_h = int(math.sqrt(frac) * W), int(math.sqrt(frac) * H)
    x1, y1 = prm.boxes[:, 0], prm.boxes[:, 1]
    assert torch.equal(prm.boxes[:, 2] - x1, torch.full_like(x1, cut_w))
    assert torch.equal(prm.boxes[:, 3] - y1, torch.full_like(y1, cut_h))
    nx, ny = W - cut_w + 1, H - cut_h + 1
    stat, crit = chi2_uniform(y1 * nx + x1, nx * ny)
    assert stat < crit, (stat, crit)


@pytest.mark.parametrize("placement", ["center", "inside"])
def test_every_pixel_is_covered_and_edges_reached_with_random_sizes(placement):
    prm = sample_cutmix(
        N, (H, W), alpha=1.0, placement=placement, generator=torch.Generator().manual_seed(4)
    )
    b = prm.boxes
    assert set(b[:, 0].tolist()) >= set(range(W)) and set(b[:, 2].tolist()) >= set(range(1, W + 1))
    assert set(b[:, 1].tolist()) >= set(range(H)) and set(b[:, 3].tolist()) >= set(range(1, H + 1))
    covered = cutmix.functional.box_mask(b, (H, W)).sum(0)[0]
    assert bool((covered > 0).all()), covered


def expected_mean_lam(alpha: float, h: int, w: int, placement: str) -> float:
    """E[λ] of the stated algorithm, computed independently with numpy (1e6 Beta draws).

    cut = 1 - λ0 with λ0 ~ Beta(α, α); sides floor(sqrt(cut)·W), floor(sqrt(cut)·H); "center": a
    uniform centre and clipping, averaged exactly over all centres; "inside": never clipped.
    """
    rng = np.random.default_rng(12345)
    cut = 1.0 - rng.beta(alpha, alpha, size=1_000_000)
    cw = np.floor(np.sqrt(cut) * w + 1e-9).astype(np.int64)
    ch = np.floor(np.sqrt(cut) * h + 1e-9).astype(np.int64)
    if placement == "inside":
        return float(np.mean(1.0 - cw * ch / (h * w)))

    def mean_clipped(size: int) -> np.ndarray:  # E over a uniform centre of the clipped side
        out = np.zeros(size + 1)
        for c in range(size + 1):
            x = np.arange(size) - c // 2
            out[c] = np.mean(np.clip(x + c, 0, size) - np.clip(x, 0, size))
        return out

    return float(np.mean(1.0 - mean_clipped(w)[cw] * mean_clipped(h)[ch] / (h * w)))


@pytest.mark.parametrize(
    ("alpha", "h", "w", "placement"),
    [
        (1.0, 13, 17, "center"),
        (0.4, 13, 17, "center"),
        (1.0, 13, 17, "inside"),
        (1.0, 224, 224, "inside"),
    ],
)
def test_mean_lambda_matches_the_algorithm(alpha, h, w, placement):
    prm = sample_cutmix(
        N, (h, w), alpha=alpha, placement=placement, generator=torch.Generator().manual_seed(6)
    )
    lam = prm.lam.double()
    expected = expected_mean_lam(alpha, h, w, placement)
    se = float(lam.std()) / math.sqrt(N)
    assert abs(float(lam.mean()) - expected) < 4.5 * se, (float(lam.mean()), expected, se)
    if placement == "inside":
        # Unclipped: Beta(α, α) has mean 1/2, and flooring the sides only shrinks the box, by at
        # most one row and one column: 0 <= E[λ] - 1/2 <= 1/h + 1/w.
        assert 0.5 - 4.5 * se <= float(lam.mean()) <= 0.5 + 1 / h + 1 / w + 4.5 * se
    else:
        # Clipping at the edges keeps more of the own image than the Beta mean.
        assert float(lam.mean()) > 0.55


@pytest.mark.parametrize("placement", ["center", "inside"])
def test_own_dominant_keeps_at_least_half(placement):
    prm = sample_cutmix(
        N,
        (13, 17),
        own_dominant=True,
        placement=placement,
        generator=torch.Generator().manual_seed(7),
    )
    # cut = min(λ0, 1 - λ0) <= 1/2 and floor(sqrt(cut)·W)·floor(sqrt(cut)·H) <= cut·H·W: exact.
    assert float(prm.lam.min()) >= 0.5
    assert float(prm.lam.min()) < 0.6  # and the bound is approached, not trivially exceeded
    plain = sample_cutmix(N, (13, 17), placement=placement, generator=torch.Generator())
    assert float(plain.lam.min()) < 0.2


def test_area_bounds_restrict_the_cut_fraction():
    lo, hi, h, w = 0.2, 0.4, 40, 50
    prm = sample_cutmix(
        N,
        (h, w),
        placement="inside",
        area_bounds=(lo, hi),
        generator=torch.Generator().manual_seed(8),
    )
    b = prm.boxes
    cut = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).double() / (h * w)
    floor_lo = math.floor(math.sqrt(lo) * w) * math.floor(math.sqrt(lo) * h) / (h * w)
    assert float(cut.max()) <= hi and float(cut.min()) >= floor_lo
    # The whole range is used (uniform for α = 1): both ends within 1% of the range.
    assert float(cut.max()) > hi - 0.01 * (hi - lo) - 2 / h
    assert float(cut.min()) < floor_lo + 0.01


@pytest.mark.parametrize("mode", MODES)
def test_probability_p(mode):
    prm = sample_cutmix(N, (8, 8), p=0.3, mode=mode, generator=torch.Generator().manual_seed(9))
    mixed = (prm.lam < 1).double()
    if mode == "batch":
        assert float(mixed.mean()) in (0.0, 1.0)
        calls = [
            sample_cutmix(
                4, (8, 8), p=0.3, mode="batch", generator=torch.Generator().manual_seed(s)
            )
            for s in range(400)
        ]
        rate = sum(float(c.lam[0] < 1) for c in calls) / 400
        assert abs(rate - 0.3) < 4.5 * math.sqrt(0.3 * 0.7 / 400)
    else:
        # Mixed with probability p (a box can be empty for tiny cuts, so allow a sliver below p).
        assert abs(float(mixed.mean()) - 0.3) < 4.5 * math.sqrt(0.3 * 0.7 / N) + 0.01
