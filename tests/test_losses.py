"""Losses: hand-computed values, the two-loss formula, soft-target CE and torch's own losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix import MixParams
from cutmix.functional import mix_labels
from cutmix.losses import (
    mixed_binary_cross_entropy,
    mixed_cross_entropy,
    soft_target_cross_entropy,
)

TOL = {"rtol": 1e-5, "atol": 1e-6}


def test_mixed_cross_entropy_hand_computed():
    # Sample 0: softmax([0, ln 3]) = [1/4, 3/4], own class 0 with λ = 1/2, partner's class 1.
    # Sample 1: uniform over 2 classes, λ = 1: ln 2.
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.5, 1.0]), boxes=None, size=None)
    labels = torch.tensor([0, 1])
    per = mixed_cross_entropy(logits, labels, p, reduction="none")
    expected0 = 0.5 * -math.log(0.25) + 0.5 * -math.log(0.75)
    torch.testing.assert_close(per, torch.tensor([expected0, math.log(2.0)]), **TOL)
    torch.testing.assert_close(
        mixed_cross_entropy(logits, labels, p), torch.tensor((expected0 + math.log(2)) / 2), **TOL
    )
    torch.testing.assert_close(
        mixed_cross_entropy(logits, labels, p, reduction="sum"),
        torch.tensor(expected0 + math.log(2)),
        **TOL,
    )
    # Label smoothing ε = 0.2 over 2 classes: CE_ε(y) = 0.8·CE(y) + 0.2·mean_c(-log p_c).
    ls = 0.2
    u0 = 0.5 * (-math.log(0.25) - math.log(0.75))
    own, other = 0.8 * -math.log(0.25) + ls * u0, 0.8 * -math.log(0.75) + ls * u0
    per = mixed_cross_entropy(logits, labels, p, label_smoothing=ls, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.5 * own + 0.5 * other, math.log(2)]), **TOL)


def test_soft_target_cross_entropy_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    t = torch.tensor([[0.25, 0.75]])
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    torch.testing.assert_close(soft_target_cross_entropy(logits, t), torch.tensor(expected), **TOL)


@given(
    n=st.integers(1, 9),
    k=st.integers(2, 6),
    kind=st.sampled_from(["cutmix", "mixup"]),
    mode=st.sampled_from(["batch", "pair", "sample"]),
    eps=st.sampled_from([0.0, 0.1, 0.3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_mixed_cross_entropy_equals_two_loss_formula_and_soft_ce(n, k, kind, mode, eps, seed):
    g = torch.Generator().manual_seed(seed)
    if kind == "cutmix":
        p = cutmix.sample_cutmix(n, (6, 5), alpha=1.0, mode=mode, generator=g)
    else:
        p = cutmix.sample_mixup(n, alpha=1.0, mode=mode, generator=g)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64).float() * 3
    y = torch.randint(0, k, (n,), generator=g)
    per = mixed_cross_entropy(logits, y, p, label_smoothing=eps, reduction="none")

    def ce(target):
        return F.cross_entropy(logits, target, label_smoothing=eps, reduction="none")

    two_loss = p.lam * ce(y) + (1 - p.lam) * ce(y[p.perm])
    torch.testing.assert_close(per, two_loss, **TOL)
    targets = mix_labels(y, p, k, label_smoothing=eps)
    torch.testing.assert_close(per, soft_target_cross_entropy(logits, targets, reduction="none"))
    plain = mix_labels(y, p, k)
    torch.testing.assert_close(
        per, F.cross_entropy(logits, plain, label_smoothing=eps, reduction="none"), **TOL
    )
    mean = mixed_cross_entropy(logits, y, p, label_smoothing=eps)
    torch.testing.assert_close(mean, two_loss.mean(), **TOL)
    torch.testing.assert_close(mean, F.cross_entropy(logits, targets), **TOL)


def test_mixed_cross_entropy_low_precision_logits_and_grad():
    g = torch.Generator().manual_seed(1)
    p = cutmix.sample_cutmix(6, (8, 8), generator=g)
    logits = torch.randn(6, 4, generator=g).bfloat16().requires_grad_()
    y = torch.randint(0, 4, (6,), generator=g)
    loss = mixed_cross_entropy(logits, y, p)
    assert loss.dtype == torch.float32
    loss.backward()
    ref = soft_target_cross_entropy(logits.detach().float(), mix_labels(y, p, 4))
    torch.testing.assert_close(loss.detach(), ref, **TOL)
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_dense_mixed_cross_entropy_with_ignore_index(eps):
    g = torch.Generator().manual_seed(2)
    n, k, h, w = 4, 5, 3, 4
    p = cutmix.sample_mixup(n, alpha=1.0, generator=g)
    logits = torch.randn(n, k, h, w, generator=g)
    y = torch.randint(0, k, (n, h, w), generator=g)
    # Without ignored pixels: equal to torch's CE against dense probability targets.
    per = mixed_cross_entropy(logits, y, p, label_smoothing=eps, reduction="none")
    assert per.shape == (n, h, w)
    eye = torch.eye(k)
    lam = p.lam.view(n, 1, 1, 1)
    soft = (lam * eye[y] + (1 - lam) * eye[y[p.perm]]).permute(0, 3, 1, 2)
    ref = F.cross_entropy(logits, soft, label_smoothing=eps, reduction="none")
    torch.testing.assert_close(per, ref, **TOL)
    torch.testing.assert_close(
        mixed_cross_entropy(logits, y, p, label_smoothing=eps), ref.mean(), **TOL
    )
    # Ignored pixels drop out of their own term; the mean is over pixels with a valid label.
    y = y.clone()
    y[0, 0, :] = -100
    y[1, :, 0] = -100
    ya, yb = y, y[p.perm]

    def ce(t):
        return F.cross_entropy(logits, t, label_smoothing=eps, ignore_index=-100, reduction="none")

    lam = p.lam.view(n, 1, 1)
    expected = lam * ce(ya) + (1 - lam) * ce(yb)  # torch's CE is 0 where ignored
    got = mixed_cross_entropy(logits, y, p, label_smoothing=eps, reduction="none")
    torch.testing.assert_close(got, expected, **TOL)
    valid = (ya != -100) | (yb != -100)
    mean = mixed_cross_entropy(logits, y, p, label_smoothing=eps)
    torch.testing.assert_close(mean, expected.sum() / valid.sum(), **TOL)


@given(
    n=st.integers(1, 8),
    multi=st.booleans(),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_mixed_binary_cross_entropy_equals_bce_on_mixed_targets(n, multi, k, seed):
    g = torch.Generator().manual_seed(seed)
    p = cutmix.sample_cutmix(n, (5, 5), alpha=1.0, generator=g)
    if multi:
        y = torch.randint(0, 2, (n, k), generator=g).float()
        logits = torch.randn(n, k, generator=g)
        lam = p.lam.view(-1, 1)
    else:
        y = torch.randint(0, 2, (n,), generator=g)
        logits = torch.randn(n, generator=g)
        lam = p.lam
    target = lam * y.float() + (1 - lam) * y.float()[p.perm]
    ref = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    got = mixed_binary_cross_entropy(logits, y, p, reduction="none")
    torch.testing.assert_close(got, ref, **TOL)
    torch.testing.assert_close(mixed_binary_cross_entropy(logits, y, p), ref.mean(), **TOL)
    # BCE is linear in the target, so the two-loss form is the same loss.
    yf = y.float()
    two = lam * F.binary_cross_entropy_with_logits(logits, yf, reduction="none") + (
        1 - lam
    ) * F.binary_cross_entropy_with_logits(logits, yf[p.perm], reduction="none")
    torch.testing.assert_close(got, two, **TOL)
    if not multi:
        # (N, 1) logits, as a one-output model gives them, are accepted too.
        torch.testing.assert_close(
            mixed_binary_cross_entropy(logits[:, None], y, p, reduction="none"), ref, **TOL
        )
