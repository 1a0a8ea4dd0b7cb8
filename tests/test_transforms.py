"""Transforms: __call__ == apply(sample()), the switch, RandomMix's choices, caller's data intact."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix.functional import cut_images, mix_images, mix_labels

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]


def make_batch(n, c, h, w, k, dtype, channels_last, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    else:
        x = torch.rand(n, c, h, w, generator=g).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, k, (n,), generator=g)


def bits(t):
    """Raw bytes, so that equality is bitwise."""
    return t.contiguous().view(torch.uint8)


def onehot(labels, k):
    return torch.eye(k)[labels]


@given(
    kind=st.sampled_from(["cutmix", "mixup"]),
    n=st.sampled_from([1, 2, 3, 5, 8]),
    c=st.integers(1, 3),
    h=st.integers(1, 8),
    w=st.integers(1, 8),
    k=st.integers(1, 5),
    dtype=st.sampled_from(DTYPES),
    channels_last=st.booleans(),
    mode=st.sampled_from(["batch", "pair", "sample"]),
    p=st.sampled_from([0.0, 0.5, 1.0]),
    eps=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**31 - 1),
)
def test_call_equals_apply_of_sample(kind, n, c, h, w, k, dtype, channels_last, mode, p, eps, seed):
    images, labels = make_batch(n, c, h, w, k, dtype, channels_last, seed)
    before_x, before_y = images.clone(), labels.clone()
    if kind == "cutmix":
        mix = cutmix.CutMix(1.0, k, p=p, mode=mode, label_smoothing=eps)
    else:
        mix = cutmix.MixUp(1.0, k, p=p, mode=mode, label_smoothing=eps)
    out, targets = mix(images, labels, generator=torch.Generator().manual_seed(seed))

    # The caller's tensors are untouched; dtype and memory format are kept; targets are float32.
    assert torch.equal(images, before_x) and torch.equal(labels, before_y)
    assert out.dtype == dtype and out.stride() == images.stride()
    assert targets.dtype == torch.float32 and targets.shape == (n, k)

    # __call__ is sample() then the kernels, with the same generator stream.
    params = mix.sample(images, generator=torch.Generator().manual_seed(seed))
    if kind == "cutmix":
        assert torch.equal(out, cut_images(images, params))
    else:
        assert params.boxes is None
        assert torch.equal(out, mix_images(images, params))
    lam = params.lam.view(-1, 1)
    soft = lam * onehot(labels, k) + (1 - lam) * onehot(labels[params.perm], k)
    torch.testing.assert_close(targets, soft * (1 - eps) + eps / k, rtol=0, atol=1e-6)
    torch.testing.assert_close(targets.sum(1), torch.ones(n), rtol=0, atol=1e-6)
    assert torch.equal(targets, mix_labels(labels, params, k, label_smoothing=eps))

    # Same seed, same result.
    out2, targets2 = mix(images, labels, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(out2, out) and torch.equal(targets2, targets)

    # Nothing mixed: p = 0 or a batch of one comes back bitwise unchanged, with one-hot targets.
    if p == 0.0 or n == 1:
        assert torch.equal(bits(out), bits(images))
        assert bool((params.lam == 1).all())
        torch.testing.assert_close(targets, onehot(labels, k) * (1 - eps) + eps / k)

    # inplace=True: the same values, written into the caller's tensor.
    mix.inplace = True
    mine = images.clone()
    res, _ = mix(mine, labels, generator=torch.Generator().manual_seed(seed))
    assert res.data_ptr() == mine.data_ptr() and torch.equal(mine, out)


@pytest.mark.parametrize("kind", ["cutmix", "mixup", "random"])
def test_enabled_switch_passes_batches_through(kind):
    x, y = make_batch(6, 3, 8, 8, 4, torch.float32, False, 0)
    mix = {
        "cutmix": cutmix.CutMix(1.0, 4, label_smoothing=0.2),
        "mixup": cutmix.MixUp(1.0, 4, label_smoothing=0.2),
        "random": cutmix.RandomMix(
            [cutmix.CutMix(1.0), cutmix.MixUp(1.0)], num_classes=4, label_smoothing=0.2
        ),
    }[kind]
    mixed, _ = mix(x, y, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(mixed, x)
    mix.enabled = False
    out, t = mix(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    torch.testing.assert_close(t, onehot(y, 4) * 0.8 + 0.05, rtol=0, atol=1e-7)
    assert "enabled=False" in repr(mix)


def test_targets_stay_float32_for_low_precision_images():
    for dtype in (torch.float16, torch.bfloat16, torch.uint8):
        x, y = make_batch(4, 3, 8, 8, 10, dtype, True, 1)
        out, t = cutmix.CutMix(1.0, 10)(x, y)
        assert out.dtype == dtype and t.dtype == torch.float32
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_float_labels_pass_through_mixing():
    x, _ = make_batch(4, 3, 8, 8, 3, torch.float32, False, 2)
    soft = torch.tensor([[0.2, 0.8, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    mix = cutmix.CutMix(1.0)
    _, t = mix(x, soft, generator=torch.Generator().manual_seed(3))
    prm = mix.sample(x, generator=torch.Generator().manual_seed(3))
    lam = prm.lam.view(-1, 1)
    torch.testing.assert_close(t, lam * soft + (1 - lam) * soft[prm.perm], rtol=0, atol=1e-7)


def test_random_mix_per_sample_blends_or_cuts_each_sample():
    g = torch.Generator().manual_seed(4)
    x, y = make_batch(64, 3, 8, 8, 5, torch.float32, False, 4)
    mix = cutmix.RandomMix(
        [cutmix.CutMix(1.0), cutmix.MixUp(1.0)], p=[0.5, 0.5], num_classes=5, choose="sample"
    )
    prm = mix.sample(x, generator=g)
    assert prm.blend is not None and prm.blend.dtype == torch.bool
    assert 0 < int(prm.blend.sum()) < 64
    # Blended samples have no box; the box of a cut sample gives its λ exactly.
    area = (prm.boxes[:, 2] - prm.boxes[:, 0]) * (prm.boxes[:, 3] - prm.boxes[:, 1])
    assert bool((area[prm.blend] == 0).all())
    cut = ~prm.blend
    assert torch.equal(prm.lam[cut], ((64 - area[cut]).double() / 64).float()[cut[cut]])
    out, t = mix.apply(x, y, prm)
    blended = prm.lam.view(-1, 1, 1, 1) * x + (1 - prm.lam.view(-1, 1, 1, 1)) * x[prm.perm]
    torch.testing.assert_close(out[prm.blend], blended[prm.blend], rtol=0, atol=1e-6)
    assert torch.equal(out[cut], cut_images(x, prm)[cut])
    assert torch.equal(t, mix_labels(y, prm, 5))
    assert bool((prm.perm != torch.arange(64)).all())


@pytest.mark.parametrize("choose", ["batch", "sample"])
def test_random_mix_choice_frequencies(choose):
    # CutMix chosen with probability 0.7: per batch over 400 batches, or per sample over 400
    # samples; within 4.5 standard errors.
    mix = cutmix.RandomMix(
        [cutmix.CutMix(1.0), cutmix.MixUp(1.0)], p=[7, 3], num_classes=5, choose=choose
    )
    assert mix.p == [0.7, 0.3]
    g = torch.Generator().manual_seed(5)
    if choose == "batch":
        x = torch.rand(4, 1, 4, 4)
        hits = [mix.sample(x, generator=g).boxes is not None for _ in range(400)]
        rate = sum(hits) / 400
    else:
        prm = mix.sample(torch.rand(400, 1, 4, 4), generator=g)
        rate = 1 - float(prm.blend.double().mean())
    assert abs(rate - 0.7) < 4.5 * math.sqrt(0.21 / 400), rate


def test_random_mix_weight_zero_never_chosen_and_same_seed_same_output():
    mix = cutmix.RandomMix([cutmix.CutMix(1.0), cutmix.MixUp(1.0)], p=[0.0, 1.0], num_classes=3)
    x, y = make_batch(6, 3, 8, 8, 3, torch.float32, False, 6)
    for s in range(20):
        assert mix.sample(x, generator=torch.Generator().manual_seed(s)).boxes is None
    a = mix(x, y, generator=torch.Generator().manual_seed(1))
    b = mix(x, y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_num_classes_inherited_and_transforms_pickle():
    mix = cutmix.RandomMix([cutmix.CutMix(1.0, num_classes=7), cutmix.MixUp(0.2)])
    assert mix.num_classes == 7
    for t in (mix, cutmix.CutMix(0.5, 3, mode="pair", area_bounds=(0.1, 0.4)), cutmix.MixUp()):
        clone = pickle.loads(pickle.dumps(t))
        assert repr(clone) == repr(t)
    assert repr(cutmix.CutMix(1.0, 10)).startswith("CutMix(alpha=1.0, p=1.0, mode='sample'")


def test_public_names_import():
    for name in cutmix.__all__:
        assert hasattr(cutmix, name), name
    assert isinstance(cutmix.__version__, str)


def test_cpu_draws_and_targets_run_single_threaded_and_restore_the_count(monkeypatch) -> None:
    # Under load a parallel region for (N,)-sized sampling ops waits for descheduled threads.
    mix = cutmix.CutMix(1.0, num_classes=4)
    seen: list[int] = []
    draw = type(mix)._draw

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return draw(self, *args, **kwargs)

    monkeypatch.setattr(type(mix), "_draw", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        mix(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
