"""Findings of a hostile review of the library (not the CLI): each test is an input a careless user
passes that used to crash with a raw torch error, give a wrong result or change the input.

Each must now give a ``ValueError`` / ``TypeError`` naming the argument, or the right result.
"""

from __future__ import annotations

import pytest
import torch

import cutmix
from cutmix import CutMix, MixParams, MixUp, RandomMix
from cutmix.functional import apply_images, cut_images, mix_images

PERM = torch.tensor([1, 2, 3, 0])
LAM = torch.tensor([0.75, 0.5, 1.0, 0.9])
BOXES = torch.tensor([[0, 0, 4, 4], [2, 2, 6, 8], [0, 0, 0, 0], [1, 1, 3, 3]])
BLEND = torch.tensor([True, False, True, False])


def _grad_input() -> tuple[torch.Tensor, torch.Tensor]:
    """A leaf and a non-leaf float64 batch from it that needs grad (features inside a model)."""
    leaf = torch.rand(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    return leaf, leaf * 1


def _reference_mix(x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    lam = lam.to(x.dtype).view(-1, 1, 1, 1)
    return torch.where(lam == 1, x, x * lam + x[PERM] * (1 - lam))


def _reference_cut(x: torch.Tensor) -> torch.Tensor:
    mask = cutmix.functional.box_mask(BOXES, (8, 8))
    return torch.where(mask, x[PERM], x)


# -- autograd through out= / inplace / per-sample blend --------------------------------------
# Before: mix_images(x, p, out=buf) and inplace=True, apply_images with a blend flag (RandomMix
# choose="sample"), MixUp(inplace=True) on a tensor that needs grad, and params whose lam needs
# grad all raised PyTorch's "where(): functions with out=... arguments don't support automatic
# differentiation" (cut_images handled the same inputs).


@pytest.mark.parametrize("how", ["out", "inplace", "new"])
def test_mix_images_with_grad_into_out_or_in_place(how: str) -> None:
    leaf, x = _grad_input()
    p = MixParams(PERM, LAM, None, None)
    expected = _reference_mix(leaf, LAM)
    kwargs = {"out": torch.empty_like(x)} if how == "out" else {"inplace": how == "inplace"}
    got = mix_images(x, p, **kwargs)  # type: ignore[arg-type]
    assert torch.equal(got, expected)
    if how == "inplace":
        assert got is x
    g = torch.rand_like(x)
    (gx,) = torch.autograd.grad(got, leaf, g)
    (ex,) = torch.autograd.grad(expected, leaf, g)
    assert torch.allclose(gx, ex)


@pytest.mark.parametrize("how", ["out", "inplace", "new"])
def test_apply_images_with_blend_flags_and_grad(how: str) -> None:
    leaf, x = _grad_input()
    p = MixParams(PERM, LAM, BOXES, (8, 8), blend=BLEND)
    expected = torch.where(BLEND.view(-1, 1, 1, 1), _reference_mix(leaf, LAM), _reference_cut(leaf))
    kwargs = {"out": torch.empty_like(x)} if how == "out" else {"inplace": how == "inplace"}
    got = apply_images(x, p, **kwargs)  # type: ignore[arg-type]
    assert torch.equal(got, expected)
    g = torch.rand_like(x)
    (gx,) = torch.autograd.grad(got, leaf, g)
    (ex,) = torch.autograd.grad(expected, leaf, g)
    assert torch.allclose(gx, ex)


def test_per_sample_random_mix_and_in_place_mixup_with_grad() -> None:
    _, x = _grad_input()
    gen = torch.Generator().manual_seed(0)
    mixed, _ = RandomMix([CutMix(), MixUp()], num_classes=4, choose="sample")(
        x, torch.arange(4), gen
    )
    assert mixed.requires_grad
    mixed.sum().backward()
    _, y = _grad_input()
    out, _ = MixUp(num_classes=4, inplace=True)(y, torch.arange(4), gen)
    assert out is y and out.requires_grad


def test_lam_that_needs_grad_blends_with_grad() -> None:
    x = torch.rand(4, 3, 8, 8)
    lam = LAM.clone().requires_grad_()
    got = mix_images(x, MixParams(PERM, lam, None, None))
    (g,) = torch.autograd.grad(got.sum(), lam)
    expected = (x - x[PERM]).sum((1, 2, 3)) * (LAM != 1)
    assert torch.allclose(g, expected, rtol=1e-4, atol=1e-4)


# -- RandomMix weights ------------------------------------------------------------------------
# Before: p=[inf, 1] and p=[1e308, 1e308] (a sum that overflows) were accepted, then every call
# raised torch.multinomial's RuntimeError.


@pytest.mark.parametrize("p", [[float("inf"), 1.0], [1e308, 1e308], [float("-inf"), 1.0]])
def test_random_mix_refuses_infinite_weights(p: list[float]) -> None:
    with pytest.raises(ValueError, match=r"^p: expected 2 non-negative weights"):
        RandomMix([CutMix(), MixUp()], p=p, num_classes=4)


def test_random_mix_accepts_large_finite_weights() -> None:
    mix = RandomMix([CutMix(), MixUp()], p=[1e300, 3e300], num_classes=4)
    assert mix.p == [0.25, 0.75]


# -- what a transform call names --------------------------------------------------------------
# Before: an (N, C, 0, W) batch was refused as "params.size: expected positive H and W" and CPU
# labels with meta (or CUDA) images as "params: expected params on cpu (where the labels are)":
# params the caller never gave.


@pytest.mark.parametrize("shape", [(4, 3, 0, 8), (4, 3, 8, 0)])
@pytest.mark.parametrize("make", [CutMix, MixUp])
def test_transform_names_images_for_an_empty_image(make: type, shape: tuple[int, ...]) -> None:
    mix = make(num_classes=4)
    with pytest.raises(ValueError, match=r"^images: expected H and W of at least 1 pixel"):
        mix(torch.rand(shape), torch.arange(4))
    with pytest.raises(ValueError, match=r"^images: expected H and W of at least 1 pixel"):
        mix.sample(torch.rand(shape))


def test_transform_names_labels_on_another_device() -> None:
    with pytest.raises(ValueError, match=r"^labels: expected labels on meta \(where the images"):
        CutMix(num_classes=4)(torch.rand(4, 3, 8, 8, device="meta"), torch.arange(4))


# -- torch.compile of a whole transform call -----------------------------------------------------
# Before: CutMix()(x, y) under torch.compile(fullgraph=True) raised "torch.* op returned
# non-Tensor": _one_thread's torch.get_num_threads() does not trace.


@pytest.mark.slow  # dynamo's first compilation takes a few seconds
@pytest.mark.filterwarnings("ignore::UserWarning")  # dynamo on the lru_cache of _cpu_consts
@pytest.mark.parametrize(
    "make",
    [
        lambda: CutMix(num_classes=4),
        lambda: MixUp(num_classes=4),
        lambda: RandomMix([CutMix(), MixUp()], num_classes=4, choose="sample"),
    ],
)
def test_a_transform_call_is_captured_whole_and_equals_eager(make) -> None:  # type: ignore[no-untyped-def]
    mix = make()
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    step = torch.compile(lambda t, lab: mix(t, lab), fullgraph=True, backend="eager", dynamic=False)
    torch.manual_seed(0)
    got = step(x, y)
    torch.manual_seed(0)
    expected = mix(x, y)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


# -- mix_labels(out=) ---------------------------------------------------------------------------
# Before: an expanded (stride 0) out= buffer raised PyTorch's "more than one element of the
# written-to tensor refers to a single memory location".


def test_mix_labels_refuses_an_expanded_out() -> None:
    p = MixParams(PERM, LAM, None, None)
    out = torch.zeros(1, 4).expand(4, 4)
    with pytest.raises(ValueError, match=r"^out: expected a tensor whose elements do not share"):
        cutmix.functional.mix_labels(torch.arange(4), p, 4, out=out)
    assert torch.equal(out, torch.zeros(4, 4))


# -- integrations -----------------------------------------------------------------------------


def test_torchvision_partner_weights_get_the_labels() -> None:
    # Before: the v2 transforms accepted partner_weights but never passed the labels to the
    # sampler, so every call raised "labels: expected the batch's labels ..., got None".
    ctv = pytest.importorskip("cutmix.integrations.torchvision")
    labels = torch.tensor([0, 0, 0, 1])
    for make in (ctv.CutMix, ctv.MixUp):
        mix = make(num_classes=2, partner_weights="inverse_frequency")
        _, t = mix(torch.rand(4, 3, 8, 8), labels)
        assert t.shape == (4, 2) and torch.allclose(t.sum(1), torch.ones(4))
        perm = mix.last_params.perm
        assert bool((perm != torch.arange(4)).all())  # weighted partners are never the sample


def test_torchvision_transform_called_with_nothing() -> None:
    # Before: IndexError: tuple index out of range.
    ctv = pytest.importorskip("cutmix.integrations.torchvision")
    with pytest.raises(TypeError, match=r"^inputs: expected a batch"):
        ctv.CutMix(num_classes=4)()


@pytest.mark.parametrize(
    ("x", "target", "kind", "match"),
    [
        # Before: numpy's "ValueError: high <= 0" from the box draw.
        (torch.rand(4, 3, 0, 8), torch.arange(4), ValueError, r"^x: expected H and W"),
        (torch.rand(4, 3, 8, 0), torch.arange(4), ValueError, r"^x: expected H and W"),
        # Before: IndexError: tuple index out of range.
        (torch.rand(4, 3, 8, 8), torch.tensor(1), ValueError, r"^target: expected one row"),
        (
            torch.rand(4, 3, 8, 8),
            torch.tensor([0, -1, 2, 3]),
            ValueError,
            r"^target: .*class id -1",
        ),
    ],
)
def test_timm_mixup_bad_inputs_name_the_argument(
    x: torch.Tensor, target: torch.Tensor, kind: type, match: str
) -> None:
    ctimm = pytest.importorskip("cutmix.integrations.timm")
    mix = ctimm.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=4, inplace=True)
    before = x.clone()
    with pytest.raises(kind, match=match):
        mix(x, target)
    assert torch.equal(x, before)


def test_timm_mixup_on_meta_propagates_shapes() -> None:
    # Before: the class-range check read the ids back to the host: "Tensor.item() cannot be called
    # on meta tensors" (and a host sync per call on CUDA); now an asynchronous device assert.
    ctimm = pytest.importorskip("cutmix.integrations.timm")
    mix = ctimm.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=4)
    x, t = mix(torch.rand(4, 3, 8, 8, device="meta"), torch.arange(4, device="meta"))
    assert x.shape == (4, 3, 8, 8) and t.shape == (4, 4) and t.device.type == "meta"


def test_mix_collate_of_no_samples_names_samples() -> None:
    # Before: default_collate's IndexError: list index out of range.
    with pytest.raises(ValueError, match=r"^samples: expected at least one sample"):
        cutmix.MixCollate(CutMix(num_classes=4))([])


# -- out= buffers that autograd knows ---------------------------------------------------------
# Before: an out= leaf with requires_grad=True raised "Output 3 of Unbind is a view and is being
# modified inplace" (auto, loop, native), was written with a graph (masked) or raised "where():
# functions with out=... arguments don't support automatic differentiation" (mix_images); an
# out= buffer with grad history (written by a differentiable call the step before, then reused)
# raised the same errors when the next batch did not need grad.


@pytest.mark.parametrize("strategy", ["auto", "loop", "masked", "native"])
def test_out_leaf_that_requires_grad_is_refused(strategy: str) -> None:
    x = torch.rand(4, 3, 8, 8)
    out = torch.zeros_like(x, requires_grad=True)
    match = r"^out: expected a buffer that is not a leaf requiring grad"
    with pytest.raises(ValueError, match=match):
        cut_images(x, MixParams(PERM, LAM, BOXES, (8, 8)), out=out, strategy=strategy)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        mix_images(x, MixParams(PERM, LAM, None, None), out=out)
    with pytest.raises(ValueError, match=match):
        cutmix.functional.mix_labels(
            torch.arange(4),
            MixParams(PERM, LAM, None, None),
            4,
            out=torch.zeros(4, 4, requires_grad=True),
        )
    assert not out.detach().any()


@pytest.mark.parametrize("strategy", ["auto", "loop", "masked", "native"])
def test_out_with_grad_history_is_reused_for_a_batch_without_grad(strategy: str) -> None:
    _, feats = _grad_input()
    cut = MixParams(PERM, LAM, BOXES, (8, 8))
    out = torch.empty_like(feats)
    cut_images(feats, cut, out=out, strategy=strategy)  # type: ignore[arg-type]
    assert out.requires_grad and not out.is_leaf
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    assert torch.equal(cut_images(x, cut, out=out, strategy=strategy), _reference_cut(x))  # type: ignore[arg-type]
    assert torch.equal(
        mix_images(x, MixParams(PERM, LAM, None, None), out=out), _reference_mix(x, LAM)
    )
    blend = MixParams(PERM, LAM, BOXES, (8, 8), blend=BLEND)
    expected = torch.where(BLEND.view(-1, 1, 1, 1), _reference_mix(x, LAM), _reference_cut(x))
    assert torch.equal(apply_images(x, blend, out=out), expected)
    targets = torch.empty(4, 4)
    lam = LAM.clone().requires_grad_()
    cutmix.functional.mix_labels(torch.arange(4), MixParams(PERM, lam, None, None), 4, out=targets)
    assert targets.requires_grad
    plain = cutmix.functional.mix_labels(torch.arange(4), MixParams(PERM, LAM, None, None), 4)
    got = cutmix.functional.mix_labels(
        torch.arange(4), MixParams(PERM, LAM, None, None), 4, out=targets
    )
    assert torch.equal(got, plain)


# -- λ = 0 ------------------------------------------------------------------------------------
# Before: a sample with λ = 0 got 0 · own + 1 · partner, so an inf or NaN in its own pixels
# leaked in as NaN (the λ = 1 case was already exact). The symmetric Beta makes λ = 0 as common
# as λ = 1 at tiny α: MixUp(alpha=1e-4) drew λ = 0 for ~half the samples.


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_mixup_lambda_zero_is_the_partner_bitwise(dtype: torch.dtype) -> None:
    x = torch.rand(4, 3, 8, 8).to(dtype)
    x[0, 0, 0, 0], x[0, 1, 0, 0], x[1, 0, 0, 0] = float("inf"), float("nan"), -0.0
    lam = torch.tensor([0.0, 0.5, 1.0, 0.0])
    perm = torch.tensor([1, 0, 3, 2])
    got = mix_images(x, MixParams(perm, lam, None, None))
    bits = {torch.float16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}[
        dtype
    ]
    assert torch.equal(got[0].view(bits), x[1].view(bits))
    assert torch.equal(got[3].view(bits), x[2].view(bits))
    assert torch.equal(got[2].view(bits), x[2].view(bits))
    assert not got[0].isnan().any()


def test_mixup_at_tiny_alpha_with_inf_pixels_has_no_nan() -> None:
    x = torch.rand(64, 3, 4, 4)
    x[::2, 0, 0, 0] = float("inf")
    mixed, _ = MixUp(alpha=1e-4, num_classes=4)(
        x, torch.arange(64) % 4, torch.Generator().manual_seed(0)
    )
    assert not mixed.isnan().any()


@pytest.mark.parametrize(("device", "kind"), [("nonsense", ValueError), (3.5, TypeError)])
def test_a_bad_device_names_device(device: object, kind: type) -> None:
    # Before: torch.device's RuntimeError "Expected one of cpu, cuda, ... device type".
    with pytest.raises(kind, match=r"^device: expected a torch.device"):
        cutmix.sample_cutmix(4, (8, 8), device=device)  # type: ignore[arg-type]


# -- concurrent calls ---------------------------------------------------------------------------


def test_concurrent_calls_from_python_threads_are_right_and_restore_the_thread_count() -> None:
    # Each call runs its CPU kernels with one intra-op thread (_one_thread) and restores the
    # caller's count; the copy_paste kernel clones outside that block. Four Python threads at
    # once must all get the reference and leave the main thread's setting as it was.
    import threading

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        big = torch.rand(4, 3, 224, 224)  # 588 KiB a sample: "auto" takes copy_paste
        params = MixParams(PERM, LAM, BOXES * 20, (224, 224))
        mask = cutmix.functional.box_mask(BOXES * 20, (224, 224))
        expected = torch.where(mask, big[PERM], big)
        errors: list[str] = []

        def work() -> None:
            try:
                for _ in range(3):
                    for strategy in ("auto", "loop", "masked", "native"):
                        got = cut_images(big, params, strategy=strategy)  # type: ignore[arg-type]
                        assert torch.equal(got, expected), strategy
                    CutMix(num_classes=4)(big, torch.arange(4))
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_apply_keeps_the_tv_tensor_type_like_call() -> None:
    # Before: CutMix()(Image) returned an Image but CutMix().apply(Image, ...) a plain Tensor.
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    images = tv_tensors.Image(torch.rand(4, 3, 8, 8))
    for mix, params in (
        (CutMix(num_classes=4), MixParams(PERM, LAM, BOXES, (8, 8))),
        (MixUp(num_classes=4), MixParams(PERM, LAM, None, None)),
    ):
        mixed, _ = mix.apply(images, torch.arange(4), params)
        assert type(mixed) is tv_tensors.Image
        expected = mix(images, torch.arange(4))[0]
        assert type(expected) is tv_tensors.Image


def test_lightning_batch_without_an_image_tensor_names_the_entry() -> None:
    # Before: AttributeError: 'list' object has no attribute 'device'.
    lightning = pytest.importorskip("cutmix.integrations.lightning")
    cb = lightning.MixCallback(CutMix(num_classes=4))
    with pytest.raises(TypeError, match=r"^batch\[0\]: expected an image tensor"):
        cb.mix_batch(([torch.rand(3, 8, 8)] * 4, torch.arange(4)))


# -- losses and boxes -------------------------------------------------------------------------


def test_losses_name_labels_for_complex_and_0d_labels() -> None:
    # Before: complex labels raised NotImplementedError ("aminmax_cpu" not implemented for
    # 'ComplexFloat'), and 0-d labels "params: expected params for a batch of 0".
    p = MixParams(PERM, LAM, None, None)
    with pytest.raises(TypeError, match=r"^labels: expected 0/1 values"):
        cutmix.mixed_binary_cross_entropy(torch.randn(4), torch.ones(4, dtype=torch.complex64), p)
    with pytest.raises(TypeError, match=r"^labels: expected integer class ids"):
        cutmix.mixed_cross_entropy(torch.randn(4, 4), torch.ones(4, dtype=torch.complex64), p)
    with pytest.raises(ValueError, match=r"^labels: expected \(N,\) 0/1 values"):
        cutmix.mixed_binary_cross_entropy(torch.randn(4), torch.tensor(1), p)


def test_cut_boxes_names_boxes_on_meta() -> None:
    # Before: "Tensor.item() cannot be called on meta tensors".
    boxes = [torch.tensor([[0.0, 0.0, 8.0, 8.0]], device="meta")] * 4
    with pytest.raises(ValueError, match=r"^boxes\[0\]: expected boxes on a real device"):
        cutmix.cut_boxes(boxes, [torch.tensor([1])] * 4, MixParams(PERM, LAM, BOXES, (8, 8)))


# -- RandomMix children's settings ----------------------------------------------------------------
# Before: RandomMix([CutMix(label_smoothing=0.1), MixUp(label_smoothing=0.1)], num_classes=4) gave
# unsmoothed targets (min 0.0) without a word; a child's inplace=True or strategy="loop" was
# ignored the same way. Now each is a UserWarning at construction; behaviour is unchanged.


@pytest.mark.parametrize(
    ("child", "setting"),
    [
        (lambda: CutMix(label_smoothing=0.1), "label_smoothing=0.1"),
        (lambda: MixUp(multi_label=True), "multi_label=True"),
        (lambda: CutMix(inplace=True), "inplace=True"),
        (lambda: CutMix(strategy="loop"), "strategy='loop'"),
    ],
)
def test_random_mix_warns_about_child_settings_it_ignores(child, setting: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(
        UserWarning, match=rf"^transforms\[0\]: {setting} is not used inside RandomMix"
    ):
        RandomMix([child(), MixUp()], num_classes=4)


def test_random_mix_is_quiet_when_children_keep_defaults_or_agree() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RandomMix([CutMix(), MixUp()], num_classes=4, label_smoothing=0.1)  # the train tool's way
        RandomMix([CutMix(label_smoothing=0.1)], num_classes=4, label_smoothing=0.1)


def test_timm_fast_collate_names_a_pil_image() -> None:
    # Before: torch.as_tensor's RuntimeError "Could not infer dtype of Image".
    ctimm = pytest.importorskip("cutmix.integrations.timm")
    pil = pytest.importorskip("PIL.Image")
    collate = ctimm.FastCollateMixup(cutmix_alpha=1.0, num_classes=4)
    with pytest.raises(TypeError, match=r"^batch\[0\]\[0\]: expected a uint8 \(C, H, W\) image"):
        collate([(pil.new("RGB", (8, 8)), 0), (pil.new("RGB", (8, 8)), 1)])


@pytest.mark.parametrize("make", [CutMix, MixUp])
def test_pair_mode_with_partner_weights_is_refused_at_construction(make: type) -> None:
    # Before: accepted by __init__, then every call raised (settings are checked in __init__).
    with pytest.raises(
        ValueError, match=r"^mode: expected 'sample' or 'batch' with partner_weights"
    ):
        make(num_classes=3, mode="pair", partner_weights="inverse_frequency")


@pytest.mark.parametrize("shape", [(4, 512, 4, 4), (4, 64, 1, 1), (4, 256, 3, 3)])
def test_small_feature_maps_do_not_look_like_nhwc(shape: tuple[int, ...]) -> None:
    # Before: feature-level mixing of (N, 512, 4, 4) maps warned "looks like (N, H, W, C)" at
    # every new call site: dim 1 (512) and the last dim (4) fit the NHWC rule.
    import warnings

    x = torch.rand(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed, _ = CutMix(num_classes=4)(x, torch.arange(4))
    assert mixed.shape == shape
