"""Kernels: hand-built params give hand-computed tensors; properties hold for every strategy."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import cutmix
from cutmix import MixParams
from cutmix.functional import apply_images, box_mask, cut_images, mix_images, mix_labels, one_hot
from helpers import FORCED

# Every kernel the dispatcher can pick, read at import time so that new strategies are covered.
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]
BITS = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.uint8: torch.uint8,
}


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bit patterns of a tensor, so that equality is bitwise (-0.0 != 0.0, NaN == NaN)."""
    return t.view(BITS[t.dtype])


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))


def make_images(n, c, h, w, dtype, channels_last, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    else:
        x = (torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 3).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def inside_mask(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, 1, H, W) bool, written independently of the library's box_mask (plain Python loop)."""
    m = torch.zeros(boxes.shape[0], 1, h, w, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        m[i, :, y1:y2, x1:x2] = True
    return m


def run_cut(images, params, strategy, **kw):
    """cut_images with a forced strategy; skip strategies that refuse this device."""
    try:
        return cut_images(images, params, strategy=strategy, **kw)
    except ValueError as err:
        if "strategy" in str(err):
            pytest.skip(f"strategy {strategy!r} not available here: {err}")
        raise


case = st.fixed_dictionaries(
    {
        "n": st.sampled_from([1, 2, 3, 4, 5, 7, 8]),
        "c": st.integers(1, 3),
        "h": st.integers(1, 9),
        "w": st.integers(1, 9),
        "dtype": st.sampled_from(DTYPES),
        "channels_last": st.booleans(),
        "mode": st.sampled_from(["batch", "pair", "sample"]),
        "placement": st.sampled_from(["center", "inside"]),
        "alpha": st.sampled_from([0.05, 0.4, 1.0, 3.0]),
        "p": st.sampled_from([0.0, 0.5, 1.0]),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def draw_params(cs, seed=None):
    g = torch.Generator().manual_seed(cs["seed"] if seed is None else seed)
    return cutmix.sample_cutmix(
        cs["n"],
        (cs["h"], cs["w"]),
        alpha=cs["alpha"],
        p=cs["p"],
        mode=cs["mode"],
        placement=cs["placement"],
        generator=g,
    )


# ----------------------------------------------------------------------------------------------
# Properties, for every forced strategy


@pytest.mark.parametrize("strategy", FORCED)
@given(cs=case)
def test_cut_images_properties(strategy, cs):
    n, c, h, w, dtype = cs["n"], cs["c"], cs["h"], cs["w"], cs["dtype"]
    images = make_images(n, c, h, w, dtype, cs["channels_last"], cs["seed"])
    before = images.clone()
    params = draw_params(cs)
    out = run_cut(images, params, strategy)

    # Inputs untouched, dtype and memory format kept, a new tensor.
    assert bitwise_equal(images, before)
    assert out.dtype == dtype and out.shape == images.shape
    assert out.data_ptr() != images.data_ptr()
    if cs["channels_last"] and c > 1 and h * w > 1:
        assert out.is_contiguous(memory_format=torch.channels_last)
    else:
        assert out.stride() == images.stride()

    # Outside the box bitwise own pixels, inside bitwise the partner's.
    inside = inside_mask(params.boxes, h, w).expand(n, c, h, w)
    partner = images[params.perm]
    assert torch.equal(bits(out)[~inside], bits(images)[~inside])
    assert torch.equal(bits(out)[inside], bits(partner)[inside])

    # λ is the kept-pixel fraction, observed on an image whose pixels name their sample.
    index = torch.arange(n, dtype=dtype).view(n, 1, 1, 1).expand(n, 1, h, w).clone()
    if cs["channels_last"]:
        index = index.contiguous(memory_format=torch.channels_last)
    kept = (run_cut(index, params, strategy) == index).sum(dim=(1, 2, 3)).double()
    assert torch.equal(params.lam, (kept / (h * w)).float())

    # inplace=True gives the same result in the caller's tensor; out= fills and returns the buffer.
    inplace = images.clone()
    res = run_cut(inplace, params, strategy, inplace=True)
    assert res.data_ptr() == inplace.data_ptr() and bitwise_equal(inplace, out)
    buf = torch.full_like(images, 7)
    res = run_cut(images, params, strategy, out=buf)
    assert res.data_ptr() == buf.data_ptr() and bitwise_equal(buf, out)
    assert bitwise_equal(images, before)

    # Same seed, same params and output.
    again = draw_params(cs)
    assert torch.equal(again.perm, params.perm) and torch.equal(again.boxes, params.boxes)
    assert torch.equal(again.lam, params.lam)
    assert bitwise_equal(run_cut(images, again, strategy), out)

    # p = 0 and N = 1 leave the images as they are.
    if cs["p"] == 0.0 or n == 1:
        assert bitwise_equal(out, images)


@given(cs=case)
def test_strategies_agree_bitwise(cs):
    images = make_images(
        cs["n"], cs["c"], cs["h"], cs["w"], cs["dtype"], cs["channels_last"], cs["seed"]
    )
    params = draw_params(cs)
    results = {}
    for s in [*FORCED, "auto"]:
        try:
            results[s] = cut_images(images, params, strategy=s)
        except ValueError as err:
            assert "strategy" in str(err)
    assert "auto" in results and len(results) >= 2
    ref = results["auto"]
    for s, r in results.items():
        assert bitwise_equal(r, ref), s
        assert r.stride() == ref.stride(), s


@pytest.mark.parametrize("strategy", ["auto", *FORCED])
def test_cut_images_large_image_and_mixed_boxes(strategy):
    # Large enough for the CPU "auto" choice to differ from small images; pairs swap boxes, so
    # every sample is both a source and a destination.
    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 3, 64, 72, generator=g)
    p = cutmix.sample_cutmix(6, (64, 72), mode="pair", generator=g)
    ref = x.clone()
    for i, (x1, y1, x2, y2) in enumerate(p.boxes.tolist()):
        ref[i, :, y1:y2, x1:x2] = x[p.perm[i], :, y1:y2, x1:x2]
    assert torch.equal(run_cut(x, p, strategy), ref)
    y = x.clone()
    run_cut(y, p, strategy, inplace=True)
    assert torch.equal(y, ref)


# ----------------------------------------------------------------------------------------------
# Hand-built params, hand-computed tensors


def test_box_mask_literal():
    m = box_mask(torch.tensor([[1, 0, 3, 2], [0, 1, 1, 3]]), (3, 4))
    assert m.dtype == torch.bool and m.shape == (2, 1, 3, 4)
    assert m.int()[:, 0].tolist() == [
        [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]],
        [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]],
    ]


HAND = MixParams(
    perm=torch.tensor([1, 2, 0]),
    lam=torch.tensor([8 / 12, 10 / 12, 1.0]),
    boxes=torch.tensor([[1, 0, 3, 2], [0, 1, 1, 3], [0, 0, 0, 0]]),
    size=(3, 4),
)
HAND_X = torch.tensor(
    [
        [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]],
        [[21, 22, 23, 24], [25, 26, 27, 28], [29, 30, 31, 32]],
        [[41, 42, 43, 44], [45, 46, 47, 48], [49, 50, 51, 52]],
    ]
).view(3, 1, 3, 4)
HAND_CUT = torch.tensor(
    [
        [[1, 22, 23, 4], [5, 26, 27, 8], [9, 10, 11, 12]],
        [[21, 22, 23, 24], [45, 26, 27, 28], [49, 30, 31, 32]],
        [[41, 42, 43, 44], [45, 46, 47, 48], [49, 50, 51, 52]],
    ]
).view(3, 1, 3, 4)


@pytest.mark.parametrize("strategy", ["auto", *FORCED])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cut_images_hand_built(strategy, dtype):
    x = HAND_X.to(dtype)
    out = run_cut(x, HAND, strategy)
    assert out.dtype == dtype
    assert torch.equal(out, HAND_CUT.to(dtype))
    assert torch.equal(x, HAND_X.to(dtype))
    # The λ written in HAND is the kept fraction of the hand-computed result.
    kept = (out == x).flatten(1).sum(1).double() / 12
    assert torch.equal(kept.float(), HAND.lam)


def test_mix_images_hand_built():
    x = torch.tensor([[0.0, 4.0], [8.0, 2.0], [1.0, 1.0]]).view(3, 1, 1, 2)
    p = MixParams(
        perm=torch.tensor([1, 0, 0]), lam=torch.tensor([0.75, 0.25, 1.0]), boxes=None, size=None
    )
    # 0.75*[0,4] + 0.25*[8,2] = [2, 3.5];  0.25*[8,2] + 0.75*[0,4] = [2, 3.5];  λ=1 keeps [1,1].
    assert mix_images(x, p).view(3, 2).tolist() == [[2.0, 3.5], [2.0, 3.5], [1.0, 1.0]]
    assert x.view(3, 2).tolist() == [[0.0, 4.0], [8.0, 2.0], [1.0, 1.0]]
    # uint8 rounds to the nearest integer (ties to even: 3.5 -> 4, 2.5 -> 2) and stays uint8.
    xu = torch.tensor([[0, 5], [8, 0], [1, 1]], dtype=torch.uint8).view(3, 1, 1, 2)
    pu = MixParams(
        perm=torch.tensor([1, 0, 0]), lam=torch.tensor([0.5, 0.5, 1.0]), boxes=None, size=None
    )
    got = mix_images(xu, pu)
    assert got.dtype == torch.uint8
    assert got.view(3, 2).tolist() == [[4, 2], [4, 2], [1, 1]]
    # bfloat16 blends in float32 and rounds once: 0.5*1 + 0.5*(1+2^-7) = 1 + 2^-8 -> 1 (ties even).
    xb = torch.tensor([1.0, 1.0 + 2**-7], dtype=torch.bfloat16).view(2, 1, 1, 1)
    pb = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.5, 0.5]), boxes=None, size=None)
    assert mix_images(xb, pb).flatten().tolist() == [1.0, 1.0]


def test_mix_images_inplace_out_and_channels_last():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 5, 6, generator=g).contiguous(memory_format=torch.channels_last)
    p = cutmix.sample_mixup(4, (5, 6), alpha=1.0, generator=g)
    ref = x * p.lam.view(-1, 1, 1, 1) + x[p.perm] * (1 - p.lam.view(-1, 1, 1, 1))
    before = x.clone()
    out = mix_images(x, p)
    assert torch.equal(x, before)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, ref)
    buf = torch.empty_like(x)
    assert mix_images(x, p, out=buf).data_ptr() == buf.data_ptr() and torch.equal(buf, ref)
    y = x.clone()
    assert mix_images(y, p, inplace=True).data_ptr() == y.data_ptr() and torch.equal(y, ref)


def test_mix_labels_class_ids_hand_built():
    p = MixParams(
        perm=torch.tensor([1, 2, 0]),
        lam=torch.tensor([0.75, 0.5, 1.0]),
        boxes=None,
        size=None,
    )
    labels = torch.tensor([0, 2, 2])
    t = mix_labels(labels, p, num_classes=3)
    assert t.dtype == torch.float32
    assert t.tolist() == [[0.75, 0.0, 0.25], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    # Smoothing ε = 0.3 maps t to 0.7·t + 0.1.
    ts = mix_labels(labels, p, num_classes=3, label_smoothing=0.3)
    expected = torch.tensor([[0.625, 0.1, 0.275], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    torch.testing.assert_close(ts, expected, rtol=0, atol=1e-7)
    assert one_hot(labels, 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    torch.testing.assert_close(
        one_hot(torch.tensor([1]), 4, label_smoothing=0.4),
        torch.tensor([[0.1, 0.7, 0.1, 0.1]]),
        rtol=0,
        atol=1e-7,
    )


def test_mix_labels_float_and_multi_hot_hand_built():
    p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 0.5]), boxes=None, size=None)
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    t = mix_labels(probs, p)
    assert t.dtype == torch.float32
    assert t.tolist() == [[0.375, 0.375, 0.25], [0.25, 0.25, 0.5]]
    ts = mix_labels(probs, p, 3, label_smoothing=0.3)
    torch.testing.assert_close(
        ts, torch.tensor([[0.3625, 0.3625, 0.275], [0.275, 0.275, 0.45]]), rtol=0, atol=1e-7
    )
    hot = torch.tensor([[True, False, True], [False, True, True]])
    assert mix_labels(hot, p).tolist() == [[0.75, 0.25, 1.0], [0.5, 0.5, 1.0]]
    assert mix_labels(hot.half(), p).tolist() == [[0.75, 0.25, 1.0], [0.5, 0.5, 1.0]]


@settings(deadline=None)
@given(
    n=st.integers(1, 9),
    k=st.integers(1, 6),
    eps=st.sampled_from([0.0, 0.25]),
    soft=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_mix_labels_out_buffer_is_overwritten_bitwise(n, k, eps, soft, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    if soft:
        labels = torch.rand(n, k, generator=g)
    p = MixParams(
        perm=torch.randint(0, n, (n,), generator=g),
        lam=torch.rand(n, generator=g),
        boxes=None,
        size=None,
    )
    expected = mix_labels(labels, p, k, label_smoothing=eps)
    buf = torch.full((n, k), float("nan"))  # stale content must not leak into the result
    got = mix_labels(labels, p, k, label_smoothing=eps, out=buf)
    assert got.data_ptr() == buf.data_ptr()
    assert torch.equal(buf, expected)
    if soft:  # the buffer may be the labels themselves: the partner rows are read first
        own = labels.clone()
        assert torch.equal(mix_labels(own, p, k, label_smoothing=eps, out=own), expected)


def test_apply_images_blend_path_hand_built():
    # Sample 0 is blended (MixUp, λ=0.25), sample 1 gets a 1x1 box from sample 0 (CutMix, λ=3/4).
    x = torch.tensor([[[0.0, 4.0], [8.0, 12.0]], [[1.0, 1.0], [1.0, 1.0]]]).view(2, 1, 2, 2)
    p = MixParams(
        perm=torch.tensor([1, 0]),
        lam=torch.tensor([0.25, 0.75]),
        boxes=torch.tensor([[0, 0, 0, 0], [1, 1, 2, 2]]),
        size=(2, 2),
        blend=torch.tensor([True, False]),
    )
    expected = [
        [[0.75, 1.75], [2.75, 3.75]],  # 0.25*x0 + 0.75*1
        [[1.0, 1.0], [1.0, 12.0]],
    ]
    assert apply_images(x, p)[:, 0].tolist() == expected
    assert x[0, 0].tolist() == [[0.0, 4.0], [8.0, 12.0]]
    buf = torch.empty_like(x)
    assert apply_images(x, p, out=buf).data_ptr() == buf.data_ptr()
    assert buf[:, 0].tolist() == expected
    y = x.clone()
    apply_images(y, p, inplace=True)
    assert y[:, 0].tolist() == expected
    # Without blend, apply_images is cut_images; without boxes it is mix_images.
    q = MixParams(perm=p.perm, lam=p.lam, boxes=p.boxes, size=(2, 2))
    assert torch.equal(apply_images(x, q), cut_images(x, q))
    r = MixParams(perm=p.perm, lam=p.lam, boxes=None, size=(2, 2))
    assert torch.equal(apply_images(x, r), mix_images(x, r))


# ----------------------------------------------------------------------------------------------
# Label properties


@given(
    n=st.integers(1, 9),
    k=st.integers(1, 6),
    mode=st.sampled_from(["batch", "pair", "sample"]),
    p=st.sampled_from([0.0, 0.5, 1.0]),
    eps=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**31 - 1),
)
def test_mix_labels_properties(n, k, mode, p, eps, seed):
    g = torch.Generator().manual_seed(seed)
    params = cutmix.sample_cutmix(n, (7, 5), alpha=1.0, p=p, mode=mode, generator=g)
    labels = torch.randint(0, k, (n,), generator=g)
    before = labels.clone()
    t = mix_labels(labels, params, k)
    assert torch.equal(labels, before) and t.dtype == torch.float32 and t.shape == (n, k)
    lam = params.lam.view(-1, 1)
    eye = torch.eye(k)
    expected = lam * eye[labels] + (1 - lam) * eye[labels[params.perm]]
    assert torch.equal(t, expected)
    torch.testing.assert_close(t.sum(1), torch.ones(n), rtol=0, atol=1e-6)
    # Probability labels give the same as their class ids; smoothing is applied afterwards.
    assert torch.equal(mix_labels(eye[labels], params), expected)
    ts = mix_labels(labels, params, k, label_smoothing=eps)
    torch.testing.assert_close(ts, expected * (1 - eps) + eps / k, rtol=0, atol=1e-6)
    torch.testing.assert_close(ts.sum(1), torch.ones(n), rtol=0, atol=1e-6)


@given(cs=case)
def test_mix_images_properties(cs):
    n, c, h, w, dtype = cs["n"], cs["c"], cs["h"], cs["w"], cs["dtype"]
    images = make_images(n, c, h, w, dtype, cs["channels_last"], cs["seed"])
    before = images.clone()
    g = torch.Generator().manual_seed(cs["seed"])
    params = cutmix.sample_mixup(
        n, (h, w), alpha=cs["alpha"], p=cs["p"], mode=cs["mode"], generator=g
    )
    out = mix_images(images, params)
    assert bitwise_equal(images, before)
    assert out.dtype == dtype and out.stride() == images.stride()
    # λ·x + (1-λ)·x[perm], in float64 for float64 and float32 otherwise, rounded once to the dtype.
    work = torch.float64 if dtype == torch.float64 else torch.float32
    lam = params.lam.to(work).view(-1, 1, 1, 1)
    ref = images.to(work) * lam + images[params.perm].to(work) * (1 - lam)
    if dtype == torch.uint8:
        ref = ref.round().clamp(0, 255)
    assert torch.equal(out, ref.to(dtype))
    # Unmixed samples (λ = 1) are bitwise their own.
    keep = params.lam == 1
    assert torch.equal(bits(out)[keep], bits(images)[keep])
    buf = torch.empty_like(images)
    assert bitwise_equal(mix_images(images, params, out=buf), out)
    mine = images.clone()
    mix_images(mine, params, inplace=True)
    assert bitwise_equal(mine, out)


@pytest.mark.parametrize("strategy", ["auto", "masked"])
def test_cut_images_is_differentiable(strategy):
    # Feature-level mixing: gradients flow to the own pixels outside the box and to the partner's
    # pixels inside it (a pixel can receive both, from itself and from the sample it is pasted into).
    g = torch.Generator().manual_seed(9)
    x = torch.rand(5, 3, 64, 72, generator=g, requires_grad=True)
    p = cutmix.sample_cutmix(5, (64, 72), generator=g)
    weight = torch.rand(5, 3, 64, 72, generator=g)
    (cut_images(x, p, strategy=strategy) * weight).sum().backward()
    inside = inside_mask(p.boxes, 64, 72).expand(5, 3, 64, 72)
    expected = torch.where(inside, 0.0, weight)
    expected.index_add_(0, p.perm, torch.where(inside, weight, 0.0))
    torch.testing.assert_close(x.grad, expected, rtol=0, atol=1e-6)
