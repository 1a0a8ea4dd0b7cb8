"""Partner sampling by class weight: distribution, reproducibility, transforms, no host sync, errors."""

from __future__ import annotations

import math

import pytest
import torch

import cutmix
from cutmix.params import partner_weights, sample_partners

LABELS = torch.tensor([0] * 8 + [1] * 3 + [2] * 1)


def _expected(labels: torch.Tensor, class_w: torch.Tensor) -> torch.Tensor:
    """P(partner of sample i has class c), written out: weights of the others, self excluded."""
    n, c = labels.shape[0], class_w.shape[0]
    counts = torch.bincount(labels, minlength=c).double()
    rows = []
    for i in range(n):
        mass = class_w.double() * (counts - torch.nn.functional.one_hot(labels[i], c).double())
        rows.append(mass / mass.sum())
    return torch.stack(rows)  # (N, C)


def _draw_classes(labels, class_weights, draws, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = labels.shape[0]
    picks = torch.stack(
        [
            sample_partners(n, labels=labels, class_weights=class_weights, generator=g)
            for _ in range(draws)
        ]
    )
    assert bool((picks != torch.arange(n)).all())  # never itself
    return labels[picks]  # (draws, N) partner classes


@pytest.mark.parametrize(
    "class_weights, class_w",
    [
        (torch.tensor([1.0, 2.0, 5.0]), torch.tensor([1.0, 2.0, 5.0])),
        ("inverse_frequency", torch.tensor([1 / 8, 1 / 3, 1.0])),
        ([0.0, 1.0, 1.0], torch.tensor([0.0, 1.0, 1.0])),
    ],
)
@pytest.mark.slow
def test_empirical_partner_classes_match_requested_weights(class_weights, class_w):
    """Tolerance: every frequency within 5 standard deviations of its expectation (seeded)."""
    draws = 3000
    classes = _draw_classes(LABELS, class_weights, draws)
    expected = _expected(LABELS, class_w)  # (N, C)
    n, c = expected.shape
    # Over all samples: frequency of each partner class.
    freq = torch.nn.functional.one_hot(classes, c).double().mean((0, 1))
    mean = expected.mean(0)
    sd = (expected * (1 - expected)).sum(0).sqrt() / (n * math.sqrt(draws))
    assert bool(((freq - mean).abs() <= 5 * sd + 1e-12).all()), (freq, mean, sd)
    # Per sample (rows are independent draws): a majority and the minority sample.
    for i in (0, n - 1):
        f = torch.nn.functional.one_hot(classes[:, i], c).double().mean(0)
        e = expected[i]
        sd_i = (e * (1 - e) / draws).sqrt()
        assert bool(((f - e).abs() <= 5 * sd_i + 1e-12).all()), (i, f, e)


def test_inverse_frequency_pastes_minority_classes_more_often():
    classes = _draw_classes(LABELS, "inverse_frequency", 500)
    share = torch.bincount(classes.flatten(), minlength=3).double() / classes.numel()
    # Uniform partners would give 8/11, 3/11, 1/11 roughly; inverse frequency evens the classes.
    assert share[2] > 0.25 and share[0] < 0.45


def test_reproducible_with_a_generator_and_params_follow():
    kw = dict(labels=LABELS, class_weights="inverse_frequency")
    a = sample_partners(12, generator=torch.Generator().manual_seed(5), **kw)
    b = sample_partners(12, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(a, b)
    p1 = cutmix.sample_cutmix(12, (8, 8), generator=torch.Generator().manual_seed(1), **kw)
    p2 = cutmix.sample_cutmix(12, (8, 8), generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(p1.perm, p2.perm) and torch.equal(p1.boxes, p2.boxes)
    assert bool((p1.perm != torch.arange(12)).all())
    m = cutmix.sample_mixup(12, generator=torch.Generator().manual_seed(1), mode="batch", **kw)
    assert bool((m.perm != torch.arange(12)).all()) and bool((m.lam == m.lam[0]).all())


def test_soft_labels_and_class_ids_agree():
    onehot = torch.nn.functional.one_hot(LABELS, 3).float()
    w = torch.tensor([1.0, 2.0, 5.0])
    torch.testing.assert_close(partner_weights(onehot, w), partner_weights(LABELS, w))
    torch.testing.assert_close(partner_weights(onehot), partner_weights(LABELS))
    # A 50/50 soft label weighs the mean of its classes.
    soft = torch.tensor([[0.5, 0.5, 0.0]])
    assert partner_weights(soft, w).tolist() == [1.5]


def test_class_weights_from_counts():
    w = cutmix.class_weights_from_counts(torch.tensor([100, 25, 0]))
    torch.testing.assert_close(w, torch.tensor([0.01, 0.04, 0.0]))
    w = cutmix.class_weights_from_counts([100, 25], power=0.5)
    torch.testing.assert_close(w, torch.tensor([0.1, 0.2]))


def test_zero_weight_rows_fall_back_to_uniform_and_batch_of_one():
    labels = torch.tensor([0, 1, 1])
    g = torch.Generator().manual_seed(0)
    # Only class 0 weighs: samples 1 and 2 pick 0; sample 0 has nobody left -> uniform over 1, 2.
    perms = torch.stack(
        [
            sample_partners(3, labels=labels, class_weights=[1.0, 0.0], generator=g)
            for _ in range(200)
        ]
    )
    assert bool((perms[:, 1:] == 0).all())
    assert set(perms[:, 0].tolist()) == {1, 2}
    one = sample_partners(1, labels=torch.tensor([0]), class_weights="inverse_frequency")
    assert one.tolist() == [0]


def test_transforms_take_partner_weights_through_call_and_collate():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(12, 3, 8, 8)
    mix = cutmix.CutMix(1.0, num_classes=3, partner_weights=[1.0, 0.0, 0.0])
    x, t = mix(images, LABELS, generator=g)
    params = mix.sample(images, generator=torch.Generator().manual_seed(0), labels=LABELS)
    assert bool((LABELS[params.perm][:8] == 0).all())  # every partner is from class 0
    # __call__ used the same draw as sample(labels=...).
    x2, _ = mix.apply(images, LABELS, params)
    assert torch.equal(x, x2)
    mixup = cutmix.MixUp(0.4, num_classes=3, partner_weights="inverse_frequency")
    _, t = mixup(images, LABELS, generator=g)
    assert t.shape == (12, 3)
    rm = cutmix.RandomMix([mix, mixup], num_classes=3, choose="sample")
    p = rm.sample(images, generator=g, labels=LABELS)
    assert bool((LABELS[p.perm] == 0).any())
    data = torch.utils.data.TensorDataset(images, LABELS)
    loader = torch.utils.data.DataLoader(
        data, batch_size=6, collate_fn=cutmix.MixCollate(mix, seed=0)
    )
    _, tb = next(iter(loader))
    assert tb.shape == (6, 3)
    # Without partner weights the old signature and behaviour hold.
    plain = cutmix.CutMix(1.0, num_classes=3)
    assert plain.sample(images, torch.Generator().manual_seed(0)).perm.shape == (12,)


def test_no_graph_break_in_weighting():
    fn = torch.compile(
        lambda y, w: (partner_weights(y), partner_weights(y, w)), fullgraph=True, backend="eager"
    )
    a, b = fn(LABELS, torch.tensor([1.0, 2.0, 5.0]))
    torch.testing.assert_close(a, partner_weights(LABELS))
    torch.testing.assert_close(b, torch.tensor([1.0, 2.0, 5.0])[LABELS])
    draw = torch.compile(
        lambda y: sample_partners(12, labels=y, class_weights="inverse_frequency"),
        fullgraph=True,
        backend="eager",
    )
    assert bool((draw(LABELS) != torch.arange(12)).all())


def test_bad_weights_and_labels():
    with pytest.raises(
        ValueError, match=r"partner_weights: expected 3 weights \(one per class\), got 2 weights"
    ):
        cutmix.CutMix(1.0, num_classes=3, partner_weights=[1.0, 2.0])
    with pytest.raises(
        ValueError,
        match=r"partner_weights: expected non-negative finite weights, got \[1.0, -1.0, 1.0\]",
    ):
        cutmix.MixUp(0.2, num_classes=3, partner_weights=[1.0, -1.0, 1.0])
    with pytest.raises(
        ValueError, match=r"class_weights: expected non-negative finite weights, got \[1.0, nan\]"
    ):
        sample_partners(
            2, labels=torch.tensor([0, 1]), class_weights=torch.tensor([1.0, float("nan")])
        )
    with pytest.raises(
        ValueError,
        match=r"class_weights: expected one weight per class \(at least 5 for class id 4\), got 3 weights",
    ):
        sample_partners(3, labels=torch.tensor([0, 4, 1]), class_weights=[1.0, 1.0, 1.0])
    with pytest.raises(
        ValueError, match=r"class_weights: expected 3 weights \(one per class\), got 2 weights"
    ):
        partner_weights(torch.eye(3), [1.0, 2.0])
    with pytest.raises(
        ValueError, match=r"class_weights: expected one of 'inverse_frequency', got 'inverse'"
    ):
        sample_partners(2, labels=torch.tensor([0, 1]), class_weights="inverse")
    with pytest.raises(
        TypeError,
        match=r"partner_weights: expected None, 'inverse_frequency' or one weight per class",
    ):
        cutmix.CutMix(1.0, partner_weights={0: 1.0})
    with pytest.raises(
        ValueError,
        match=r"labels: expected the batch's labels when partners are weighted by class, got None",
    ):
        cutmix.CutMix(1.0, partner_weights="inverse_frequency").sample(torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match=r"labels: expected 4 labels \(one per sample\)"):
        sample_partners(4, labels=torch.tensor([0, 1]), class_weights="inverse_frequency")
    with pytest.raises(ValueError, match=r"mode: expected 'sample' or 'batch' with class_weights"):
        sample_partners(
            4, mode="pair", labels=torch.tensor([0, 1, 0, 1]), class_weights="inverse_frequency"
        )
    with pytest.raises(
        ValueError, match=r"counts: expected non-negative finite counts, got \[3.0, -1.0\]"
    ):
        cutmix.class_weights_from_counts([3, -1])
