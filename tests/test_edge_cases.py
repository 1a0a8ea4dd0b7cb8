"""The edge cases of issue 10 ("Why 2"), each a test that failed on the old code.

Hand-built params are checked when built (shapes, dtypes, devices) and at the public entry points
(values, on CPU); ``inplace=True`` validates everything first; an (N, H, W, C)-looking batch warns;
lazily negated views and overlapping or expanded ``out=`` buffers are handled.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import cutmix
from cutmix import MixParams
from cutmix.functional import (
    STRATEGIES,
    apply_images,
    cut_boxes,
    cut_images,
    cut_masks,
    mix_images,
    mix_labels,
)
from cutmix.params import sample_beta

N, H, W = 4, 6, 8
PERM = torch.tensor([1, 2, 3, 0])
LAM = torch.tensor([0.75, 1.0, 0.5, 1.0])
BOXES = torch.tensor([[0, 0, 4, 3], [0, 0, 0, 0], [2, 1, 6, 5], [0, 0, 0, 0]])


def _params(**kw):
    d = {"perm": PERM, "lam": LAM, "boxes": BOXES, "size": (H, W)}
    d.update(kw)
    return MixParams(**d)


def _images(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(N, 3, H, W, generator=g) * 200).to(dtype)


# --- MixParams checks its own shapes, dtypes and devices --------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("boxes", torch.zeros(0, 4, dtype=torch.long), ValueError),  # segfaulted in the C kernel
        ("boxes", torch.zeros(N, 4, dtype=torch.long, device="meta"), ValueError),  # segfaulted
        ("perm", torch.zeros(N, 0, dtype=torch.long), ValueError),  # segfaulted
        ("lam", torch.zeros(0), ValueError),  # mix_labels segfaulted
        ("lam", torch.zeros(N, device="meta"), ValueError),  # mix_labels segfaulted
        ("lam", torch.zeros(2), ValueError),  # heap garbage in the targets
        ("perm", PERM.float(), TypeError),  # was truncated
        ("perm", torch.tensor([True, False, True, False]), TypeError),  # was accepted
        ("lam", torch.ones(N, dtype=torch.long), TypeError),
        ("boxes", BOXES.float(), TypeError),
        ("boxes", BOXES[:, :3], ValueError),
        ("boxes", BOXES[:2], ValueError),
        ("blend", torch.ones(N), TypeError),
        ("blend", torch.ones(2, dtype=torch.bool), ValueError),
        ("size", (0, W), ValueError),
        ("size", (H,), TypeError),
        ("size", (H, 2.5), TypeError),
        ("size", (True, W), TypeError),
        ("perm", [1, 2, 3, 0], TypeError),
        ("lam", 0.5, TypeError),
    ],
)
def test_malformed_params_are_refused_when_built(field, value, kind):
    with pytest.raises(kind, match=rf"^params\.{field}: expected"):
        _params(**{field: value})


def test_params_normalise_integer_dtypes_and_sizes():
    p = _params(perm=PERM.to(torch.int32), boxes=BOXES.to(torch.int16), size=[H, W])
    assert p.perm.dtype == torch.int64 and p.boxes.dtype == torch.int64 and p.size == (H, W)
    assert torch.equal(cut_images(_images(), p), cut_images(_images(), _params()))


def test_all_meta_params_are_allowed_but_never_meet_cpu_images():
    p = _params().to("meta")
    assert p.device.type == "meta"
    with pytest.raises(ValueError, match=r"^params: expected params on cpu"):
        cut_images(_images(), p)
    with pytest.raises(ValueError, match=r"^params: expected params on cpu"):
        mix_labels(torch.tensor([0, 1, 2, 0]), p, 3)
    with pytest.raises(ValueError, match=r"^params: expected params on a real device"):
        cut_boxes([torch.zeros(0, 4)] * N, [torch.zeros(0)] * N, p)


def test_meta_images_with_meta_params_propagate_shapes():
    p = cutmix.sample_cutmix(N, (H, W)).to("meta")
    x = torch.empty(N, 3, H, W, device="meta")
    assert apply_images(x, p, out=torch.empty_like(x)).device.type == "meta"
    assert cut_images(x, p, inplace=True).shape == x.shape
    y = torch.zeros(N, dtype=torch.long, device="meta")
    assert cutmix.CutMix(num_classes=3)(x, y)[1].shape == (N, 3)


def test_library_samplers_still_build_params():
    g = torch.Generator().manual_seed(0)
    for mode in ("sample", "pair", "batch"):
        assert cutmix.sample_cutmix(5, (H, W), mode=mode, generator=g).boxes.shape == (5, 4)
        assert cutmix.sample_mixup(5, mode=mode, generator=g).lam.shape == (5,)
    assert cutmix.identity_params(3, (H, W)).size == (H, W)
    mix = cutmix.RandomMix([cutmix.CutMix(), cutmix.MixUp()], num_classes=3, choose="sample")
    assert mix.sample(_images(), generator=g).blend.shape == (N,)


# --- Box, partner and λ values of hand-built params --------------------------------------------------


BAD_VALUES = [
    ("boxes", torch.tensor([[4, 0, 2, 3], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])),  # x2 < x1
    ("boxes", torch.tensor([[0, 3, 2, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])),  # y2 < y1
    ("boxes", torch.tensor([[0, 0, W + 1, 2], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])),
    ("boxes", torch.tensor([[0, 0, 2, H + 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])),
    ("boxes", torch.tensor([[-1, 0, 2, 2], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])),
    ("perm", torch.tensor([1, 2, 3, 4])),
    ("perm", torch.tensor([-1, 2, 3, 0])),
    ("lam", torch.tensor([2.0, 1.0, 1.0, 1.0])),
    ("lam", torch.tensor([float("nan"), 1.0, 1.0, 1.0])),
    ("lam", torch.tensor([-0.5, 1.0, 1.0, 1.0])),
]


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_bad_values_are_refused_before_anything_is_written(field, value, strategy, inplace, dtype):
    x = _images(dtype)
    before = x.clone()
    p = _params(**{field: value})
    with pytest.raises(ValueError, match=rf"^params\.{field}: expected"):
        cut_images(x, p, strategy=strategy, inplace=inplace)
    assert torch.equal(x, before)


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_bad_values_are_refused_by_every_entry_point(field, value):
    p = _params(**{field: value})
    x, y = _images(), torch.tensor([0, 1, 2, 0])
    masks = torch.zeros(N, H, W, dtype=torch.long)
    calls = [
        lambda: apply_images(x, p),
        lambda: cut_masks(masks, p),
        lambda: cutmix.CutMix(num_classes=3).apply(x, y, p),
        lambda: cut_boxes([torch.tensor([[0.0, 0.0, 2.0, 2.0]])] * N, [torch.tensor([1])] * N, p),
    ]
    if field != "boxes":
        calls += [lambda: mix_images(x, p), lambda: mix_labels(y, p, 3)]
    for call in calls:
        with pytest.raises(ValueError, match=rf"^params\.{field}: expected"):
            call()


def test_boxes_without_a_size_are_checked_against_the_images():
    p = _params(size=None, boxes=torch.tensor([[0, 0, W + 1, 1]] + [[0, 0, 0, 0]] * 3))
    with pytest.raises(ValueError, match=r"inside \(H, W\) = \(6, 8\)"):
        cut_images(_images(), p)


def test_compiled_masked_kernel_never_writes_outside_the_box():
    # Under torch.compile (and on CUDA) values are not checked (that would sync with the host):
    # the mask built from the box clips it to the image and makes an inverted box empty.
    x = _images()
    boxes = torch.tensor([[4, 0, 2, 3], [-3, -2, 3, 2], [5, 4, 100, 100], [0, 0, 0, 0]])
    fn = torch.compile(
        lambda images, b: cut_images(images, MixParams(PERM, LAM, b, (H, W))),
        backend="eager",
        fullgraph=True,
    )
    got = fn(x, boxes)
    expected = x.clone()
    expected[1, :, 0:2, 0:3] = x[2, :, 0:2, 0:3]
    expected[2, :, 4:, 5:] = x[3, :, 4:, 5:]
    assert torch.equal(got, expected)


# --- inplace=True validates everything first ---------------------------------------------------------


@pytest.mark.parametrize("transform", [cutmix.CutMix, cutmix.MixUp])
def test_inplace_with_bad_label_leaves_images_untouched(transform):
    x = _images()
    before = x.clone()
    mix = transform(num_classes=3, inplace=True)
    with pytest.raises(ValueError, match="labels: expected class ids in"):
        mix(x, torch.tensor([0, 1, 7, 0]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, before)


# --- An (N, H, W, C)-looking batch warns -------------------------------------------------------------


@pytest.mark.parametrize("c", [1, 3, 4])
def test_nhwc_batch_warns_once_naming_the_shape(c):
    x = torch.rand(N, 24, 40, c)
    p = cutmix.sample_cutmix(N, (40, c), generator=torch.Generator().manual_seed(0))
    for call in (
        lambda: cut_images(x, p),
        lambda: apply_images(x, p),
        lambda: cutmix.CutMix(num_classes=3)(x, torch.tensor([0, 1, 2, 0])),
    ):
        with pytest.warns(UserWarning) as rec:
            call()
        msgs = [str(w.message) for w in rec if issubclass(w.category, UserWarning)]
        assert len(msgs) == 1 and f"({N}, 24, 40, {c})" in msgs[0]


def test_nchw_batch_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cutmix.CutMix(num_classes=3)(torch.rand(N, 3, 24, 40), torch.tensor([0, 1, 2, 0]))
        cut_images(torch.rand(N, 2, 4, 3), _params(size=None, boxes=torch.zeros(N, 4, dtype=int)))


# --- Views with the negative bit, overlapping and expanded out= --------------------------------------


def _strided_neg_view():
    z = torch.randn(N, 3, H, W, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    return z.conj().imag


def _dense_neg_view():
    return torch._neg_view(torch.randn(N, 3, H, W, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("make", [_strided_neg_view, _dense_neg_view])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_negative_bit_view_gives_the_right_values(strategy, make):
    # The C kernel copied the raw bytes of a dense one (every sign flipped); the masked kernel
    # raised a raw RuntimeError (view to another dtype).
    x = make()
    assert x.is_neg()
    got = cut_images(x, _params(), strategy=strategy)
    assert torch.equal(got, cut_images(x.resolve_neg(), _params(), strategy="masked"))
    assert torch.equal(mix_images(x, _params()), mix_images(x.resolve_neg(), _params()))


def test_negative_bit_view_is_refused_for_writing():
    x = torch.randn(N, 3, H, W, dtype=torch.complex64).conj().imag
    with pytest.raises(ValueError, match=r"^images: expected a tensor without the negative"):
        cut_images(x, _params(), inplace=True)
    with pytest.raises(ValueError, match=r"^out: expected a tensor without the negative"):
        cut_images(torch.rand(N, 3, H, W), _params(), out=x)


def test_out_overlapping_through_a_strided_view_is_refused():
    base = torch.rand(N, 3, H, 12)
    before = base.clone()
    with pytest.raises(ValueError, match=r"^out: expected a buffer that shares no memory"):
        cut_images(base[..., :8], _params(), out=base[..., 4:12])
    assert torch.equal(base, before)
    wide = torch.rand(N, 3, H, 16)  # side by side: no shared element, allowed
    assert (
        cut_images(wide[..., :8], _params(), out=wide[..., 8:]).data_ptr()
        == wide[..., 8:].data_ptr()
    )


def test_expanded_out_is_refused():
    out = torch.empty(1, 3, H, W).expand(N, 3, H, W)
    with pytest.raises(ValueError, match=r"^out: expected a tensor whose elements do not share"):
        cut_images(_images(), _params(), out=out)
    with pytest.raises(ValueError, match=r"^out: expected a tensor whose elements do not share"):
        mix_images(_images(), _params(), out=out)


# --- Tiny α: Beta(α, α) is symmetric; box sides without an epsilon ----------------------------------


def _binomial_ok(k: int, n: int, p: float = 0.5, z: float = 5.0) -> bool:
    return abs(k - n * p) <= z * (n * p * (1 - p)) ** 0.5


@pytest.mark.parametrize("alpha", [1e-7, 1e-6, 1e-3, 0.02, 0.099, 0.1, 0.3])
def test_beta_is_symmetric_at_every_alpha(alpha):
    # Old sampler: P(λ < 0.5) was 99.9 % at α = 1e-6 and 62 % at α = 1e-3.
    n = 4000
    lam = sample_beta(alpha, n, generator=torch.Generator().manual_seed(1))
    assert bool(((lam >= 0) & (lam <= 1)).all())
    assert _binomial_ok(int((lam < 0.5).sum()), n)
    # The same through MixUp params (their own draws).
    p = cutmix.sample_mixup(n, alpha=alpha, generator=torch.Generator().manual_seed(2))
    assert _binomial_ok(int((p.lam < 0.5).sum()), n)


def test_inside_boxes_at_tiny_alpha_are_empty_or_full():
    # Old sampler: a 39 x 23 box every time at α = 1e-7 on 24 x 40, never nothing or everything.
    n = 2000
    g = torch.Generator().manual_seed(3)
    p = cutmix.sample_cutmix(n, (24, 40), alpha=1e-7, placement="inside", generator=g)
    area = (p.boxes[:, 2] - p.boxes[:, 0]) * (p.boxes[:, 3] - p.boxes[:, 1])
    empty, full = int((area == 0).sum()), int((area == 24 * 40).sum())
    assert empty + full >= n - 5
    assert _binomial_ok(empty, n)


@pytest.mark.parametrize("placement", ["center", "inside"])
def test_box_sides_have_no_epsilon(placement):
    # A cut fraction 1e-12 below 1: sqrt(cut) * W = W - 2e-11, whose floor is W - 1. The old
    # `+ 1e-9` made it a full-image box.
    cut = 1.0 - 1e-12
    p = cutmix.sample_cutmix(
        64,
        (24, 40),
        area_bounds=(cut, cut),
        placement=placement,
        generator=torch.Generator().manual_seed(4),
    )
    area = (p.boxes[:, 2] - p.boxes[:, 0]) * (p.boxes[:, 3] - p.boxes[:, 1])
    assert not bool((area == 24 * 40).any())
    if placement == "inside":
        assert bool((area == 23 * 39).all())
    # And exact squares stay exact: cut = 1/4 gives half sides.
    q = cutmix.sample_cutmix(
        8,
        (24, 40),
        area_bounds=(0.25, 0.25),
        placement="inside",
        generator=torch.Generator().manual_seed(5),
    )
    assert bool(((q.boxes[:, 2] - q.boxes[:, 0]) == 20).all())
    assert bool(((q.boxes[:, 3] - q.boxes[:, 1]) == 12).all())


# --- Multi-label smoothing: per class toward 1/2 (timm's multi_label=True) --------------------------


def _within_one_ulp(a: torch.Tensor, b: torch.Tensor) -> bool:
    big = torch.maximum(a.abs(), b.abs())
    ulp = torch.nextafter(big, torch.full_like(big, float("inf"))) - big
    return bool(((a - b).abs() <= ulp).all())


def _multi_hot(n: int, c: int, seed: int) -> torch.Tensor:
    return torch.rand(n, c, generator=torch.Generator().manual_seed(seed)) < 0.3


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_multi_label_smoothing_equals_timm(eps):
    mixup = pytest.importorskip("timm.data.mixup")
    n, c = 6, 5
    y = _multi_hot(n, c, 0).float()
    lam = torch.tensor([0.3, 0.5, 1.0, 0.0, 0.75, 0.9])
    p = MixParams(perm=torch.arange(n).flip(0), lam=lam, boxes=None, size=None)  # timm: flip
    ref = mixup.mixup_target(y, c, lam.view(-1, 1), eps, multi_label=True)
    for labels in (y, y.bool()):
        got = mix_labels(labels, p, c, label_smoothing=eps, multi_label=True)
        assert _within_one_ulp(got, ref)
    # The default keeps smoothing toward 1/C (the rows of a softmax target).
    plain = mix_labels(y, p, c, label_smoothing=eps)
    assert torch.allclose(plain, mix_labels(y, p, c) * (1 - eps) + eps / c)
    # mixed_binary_cross_entropy with the same smoothing is BCE against timm's targets.
    logits = torch.randn(n, c, generator=torch.Generator().manual_seed(1))
    loss = cutmix.mixed_binary_cross_entropy(logits, y, p, label_smoothing=eps)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, ref)
    assert torch.allclose(loss, expected, rtol=1e-6, atol=0)


def test_multi_label_smoothing_of_class_ids_and_in_the_transforms():
    n, c, eps = 6, 5, 0.2
    p = cutmix.sample_cutmix(n, (8, 8), generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([0, 4, 2, 2, 1, 3])
    hard = mix_labels(ids, p, c)
    assert torch.equal(
        mix_labels(ids, p, c, label_smoothing=eps, multi_label=True), hard * (1 - eps) + eps / 2
    )
    y = _multi_hot(n, c, 2)
    x = torch.rand(n, 3, 8, 8)
    expected = mix_labels(y, p, c, label_smoothing=eps, multi_label=True)
    for mix in (
        cutmix.CutMix(num_classes=c, label_smoothing=eps, multi_label=True),
        cutmix.RandomMix([cutmix.CutMix()], num_classes=c, label_smoothing=eps, multi_label=True),
    ):
        assert torch.equal(mix.apply(x, y, p)[1], expected)
        assert "multi_label=True" in repr(mix)
    mixup = cutmix.MixUp(num_classes=c, label_smoothing=eps, multi_label=True)
    q = cutmix.sample_mixup(n, generator=torch.Generator().manual_seed(1))
    assert torch.equal(
        mixup.apply(x, y, q)[1], mix_labels(y, q, c, label_smoothing=eps, multi_label=True)
    )
    # Disabled: no mixing, smoothed per class.
    off = cutmix.CutMix(num_classes=c, label_smoothing=eps, multi_label=True, enabled=False)
    assert torch.equal(off(x, y)[1], y.float() * (1 - eps) + eps / 2)


# --- Check once ------------------------------------------------------------------------------------


def _count_calls(monkeypatch, names):
    from cutmix import _validate

    counts = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(_validate, name)

        def counting(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(_validate, name, counting)
    return counts


@pytest.mark.parametrize(
    "make",
    [
        lambda: cutmix.CutMix(num_classes=3),
        lambda: cutmix.MixUp(num_classes=3, mode="pair"),
        lambda: cutmix.RandomMix([cutmix.CutMix(), cutmix.MixUp()], num_classes=3),
        lambda: cutmix.RandomMix([cutmix.CutMix(), cutmix.MixUp()], num_classes=3, choose="sample"),
    ],
)
def test_a_transform_call_checks_the_images_once_and_no_setting(monkeypatch, make):
    # Old code: the images were checked 3 times per CutMix() call (7 for RandomMix per sample),
    # and alpha, p, mode, placement again on every call.
    mix = make()
    names = ["check_images", "check_alpha", "check_probability", "check_mode", "check_placement"]
    counts = _count_calls(monkeypatch, names)
    value_checks = []
    original = MixParams._check_values
    monkeypatch.setattr(
        MixParams, "_check_values", lambda self, *a: value_checks.append(1) or original(self, *a)
    )
    x, y = _images(), torch.tensor([0, 1, 2, 0])
    mix(x, y, generator=torch.Generator().manual_seed(0))
    assert counts == {"check_images": 1} | dict.fromkeys(names[1:], 0)
    assert value_checks == []  # params drawn by the library are valid by construction
    # apply() with given params: images and params values checked once each.
    counts["check_images"] = 0
    mix.apply(x, y, mix.sample(x))
    assert counts["check_images"] == 2 and value_checks == [1]  # sample() + apply()


# --- CUDA: no value check (it would sync), nothing written outside the box -------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_call_does_not_sync_and_bad_boxes_stay_clipped():
    x = torch.rand(N, 3, H, W, device="cuda")
    y = torch.tensor([0, 1, 2, 0], device="cuda")
    mix = cutmix.CutMix(num_classes=3)
    mix(x, y)  # warm-up (lazy inits may sync once)
    torch.cuda.set_sync_debug_mode("error")
    try:
        mix(x, y)
        boxes = torch.tensor([[4, 0, 2, 3], [-3, -2, 3, 2], [5, 4, 100, 100], [0, 0, 0, 0]])
        p = MixParams(PERM.cuda(), LAM.cuda(), boxes.cuda(), (H, W))
        got = cut_images(x, p)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    expected = x.clone()
    expected[1, :, 0:2, 0:3] = x[2, :, 0:2, 0:3]
    expected[2, :, 4:, 5:] = x[3, :, 4:, 5:]
    assert torch.equal(got, expected)
