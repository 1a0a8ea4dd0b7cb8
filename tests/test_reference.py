"""Reference comparisons with a corrected version of the widely copied tutorial code.

The tutorial's batch-mode CutMix (after the original repository's ``rand_bbox``) has these problems,
corrected below: width and height taken from the wrong axes, ``np.int`` (removed from NumPy), the
caller's batch written in place, and the right edge at ``cx + cut_w // 2``, which makes every box
even-sized (an odd side loses a pixel). Kept as in the tutorial: one box and one λ for the whole
batch, λ recomputed from the clipped box, the paper's uniform centre and clipping.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix import MixParams
from cutmix.functional import cut_images
from helpers import FORCED


def rand_bbox(size, lam, cx, cy):
    """Corrected tutorial ``rand_bbox``: ``size`` is ``(N, C, H, W)``; the centre is passed in."""
    H, W = size[2], size[3]
    cut_rat = np.sqrt(1.0 - lam)
    cut_w = int(W * cut_rat)
    cut_h = int(H * cut_rat)
    bbx1 = int(np.clip(cx - cut_w // 2, 0, W))
    bby1 = int(np.clip(cy - cut_h // 2, 0, H))
    bbx2 = int(np.clip(cx - cut_w // 2 + cut_w, 0, W))
    bby2 = int(np.clip(cy - cut_h // 2 + cut_h, 0, H))
    return bbx1, bby1, bbx2, bby2


def tutorial_apply(data, indices, box):
    """Corrected tutorial batch step given the permutation and the box: out of place."""
    bbx1, bby1, bbx2, bby2 = box
    out = data.clone()
    out[:, :, bby1:bby2, bbx1:bbx2] = data[indices, :, bby1:bby2, bbx1:bbx2]
    lam = 1 - ((bbx2 - bbx1) * (bby2 - bby1) / (data.size()[-1] * data.size()[-2]))
    return out, lam


def tutorial_cutmix(data, indices, lam, cx, cy):
    """The corrected tutorial function with its random draws (λ, centre, permutation) passed in."""
    return tutorial_apply(data, indices, rand_bbox(data.size(), lam, cx, cy))


def batch_params(perm, box, lam, size):
    n = perm.shape[0]
    return MixParams(
        perm=perm,
        lam=torch.full((n,), lam, dtype=torch.float32),
        boxes=torch.tensor(box).expand(n, 4).clone(),
        size=size,
    )


@given(
    n=st.integers(2, 6),
    c=st.integers(1, 3),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    lam=st.floats(0.0, 1.0),
    fx=st.floats(0.0, 1.0, exclude_max=True),
    fy=st.floats(0.0, 1.0, exclude_max=True),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_equals_corrected_tutorial_given_the_same_draws(n, c, h, w, lam, fx, fy, seed):
    g = torch.Generator().manual_seed(seed)
    data = torch.rand(n, c, h, w, generator=g)
    before = data.clone()
    indices = cutmix.sample_partners(n, mode="batch", generator=g)
    cx, cy = int(fx * w), int(fy * h)
    ref, ref_lam = tutorial_cutmix(data, indices, lam, cx, cy)
    box = rand_bbox(data.size(), lam, cx, cy)
    params = batch_params(indices, box, ref_lam, (h, w))
    for s in ["auto", *FORCED]:
        try:
            got = cut_images(data, params, strategy=s)
        except ValueError:
            continue
        assert torch.equal(got, ref), s
    assert torch.equal(data, before)


@pytest.mark.parametrize(("h", "w"), [(7, 11), (16, 9), (1, 5)])
def test_batch_mode_equals_corrected_tutorial_given_the_same_permutation_and_box(h, w):
    g = torch.Generator().manual_seed(h * w)
    for _ in range(30):
        data = torch.rand(5, 3, h, w, generator=g)
        p = cutmix.sample_cutmix(5, (h, w), alpha=1.0, mode="batch", generator=g)
        ref, ref_lam = tutorial_apply(data, p.perm, p.boxes[0].tolist())
        assert torch.equal(cut_images(data, p), ref)
        assert torch.equal(p.lam, torch.full((5,), ref_lam, dtype=torch.float32))


@pytest.mark.parametrize("frac", [0.2, 0.45])
def test_batch_mode_boxes_are_the_tutorials_boxes(frac):
    # With the cut fraction fixed, every box we draw is one that the corrected tutorial draws for
    # some centre, and (over 1500 batches: a box is missed with odds ~e^-28) every one appears.
    h, w = 6, 9
    support = {rand_bbox((1, 1, h, w), 1.0 - frac, cx, cy) for cx in range(w) for cy in range(h)}
    seen = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(1500):
        p = cutmix.sample_cutmix(3, (h, w), mode="batch", area_bounds=(frac, frac), generator=g)
        seen.add(tuple(p.boxes[0].tolist()))
    assert seen <= support
    assert seen == support


def test_tutorial_loss_equals_mixed_cross_entropy_in_batch_mode():
    # The tutorial's criterion(output, y_a) * lam + criterion(output, y_b) * (1 - lam).
    g = torch.Generator().manual_seed(1)
    criterion = nn.CrossEntropyLoss()
    for _ in range(10):
        p = cutmix.sample_cutmix(8, (12, 10), mode="batch", generator=g)
        output = torch.randn(8, 4, generator=g)
        y = torch.randint(0, 4, (8,), generator=g)
        lam = float(p.lam[0])
        ref = criterion(output, y) * lam + criterion(output, y[p.perm]) * (1 - lam)
        torch.testing.assert_close(cutmix.mixed_cross_entropy(output, y, p), ref)


def test_tutorial_binary_loss_on_class_ids_is_wrong():
    # The tutorial's two-class example trained BCEWithLogitsLoss on the (unmixed) class ids of a
    # CutMix batch: it ignores λ, so it differs from BCE on the mixed targets we compute.
    g = torch.Generator().manual_seed(2)
    p = cutmix.sample_cutmix(16, (8, 8), generator=g)
    logits = torch.randn(16, generator=g)
    y = torch.randint(0, 2, (16,), generator=g)
    while bool((y == y[p.perm]).all()):  # make sure some pairs have different classes
        y = torch.randint(0, 2, (16,), generator=g)
    tutorial = nn.BCEWithLogitsLoss()(logits, y.float())
    ours = cutmix.mixed_binary_cross_entropy(logits, y, p)
    target = p.lam * y + (1 - p.lam) * y[p.perm]
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(logits, target))
    assert not math.isclose(float(ours), float(tutorial), rel_tol=1e-3)


def test_uncorrected_tutorial_writes_into_the_callers_batch():
    # The tutorial's `data[:, :, y1:y2, x1:x2] = data[indices, :, y1:y2, x1:x2]` changes the
    # caller's tensor; ours leaves it alone and gives the same mixed batch.
    g = torch.Generator().manual_seed(3)
    data = torch.rand(4, 3, 8, 8, generator=g)
    original = data.clone()
    p = cutmix.sample_cutmix(4, (8, 8), alpha=1.0, mode="batch", area_bounds=(0.3, 0.3))
    x1, y1, x2, y2 = p.boxes[0].tolist()
    ours = cut_images(data, p)
    data[:, :, y1:y2, x1:x2] = data[p.perm, :, y1:y2, x1:x2]  # the tutorial, verbatim
    assert torch.equal(ours, data)
    assert not torch.equal(data, original)
