"""Every bad input named in the issue raises the right error with a message that pins it down.

Messages follow ``"<argument>: expected <what>, got <what came>"``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import cutmix
from cutmix.functional import cut_images, mix_images, mix_labels

X = torch.rand(4, 3, 8, 8)
Y = torch.tensor([0, 1, 2, 0])
P = cutmix.sample_cutmix(4, (8, 8), generator=torch.Generator().manual_seed(0))


def raises(kind, text):
    """pytest.raises matching the literal message start ``text``."""
    return pytest.raises(kind, match="^" + re.escape(text))


# images ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 8, 8), (8, 8), (2, 1, 3, 8, 8)])
def test_images_not_4d(shape):
    bad = torch.rand(shape)
    msg = f"images: expected a 4-D tensor (N, C, H, W), got Tensor of shape {shape}"
    with raises(ValueError, msg):
        cut_images(bad, P)
    with raises(ValueError, msg):
        mix_images(bad, P)
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, 3)(bad, Y)
    with raises(ValueError, msg):
        cutmix.MixUp(1.0, 3)(bad, Y)


def test_empty_batch():
    empty = torch.rand(0, 3, 8, 8)
    msg = "images: expected at least one sample (an empty batch cannot be mixed), got Tensor of shape (0, 3, 8, 8)"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, 3)(empty, torch.zeros(0, dtype=torch.long))
    with raises(ValueError, msg):
        cutmix.MixUp(1.0, 3).sample(empty)
    msg = "batch_size: expected at least one sample (an empty batch cannot be mixed), got 0"
    with raises(ValueError, msg):
        cutmix.sample_cutmix(0, (8, 8))
    with raises(ValueError, msg):
        cutmix.sample_mixup(0)
    with raises(ValueError, msg):
        cutmix.sample_partners(0)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.bool])
def test_integer_images_other_than_uint8(dtype):
    bad = torch.zeros(4, 3, 8, 8, dtype=dtype)
    msg = f"images: expected a floating-point or uint8 tensor, got Tensor of shape (4, 3, 8, 8), dtype {dtype}"
    with raises(TypeError, msg):
        cut_images(bad, P)
    with raises(TypeError, msg):
        cutmix.CutMix(1.0, 3)(bad, Y)


def test_non_tensor_inputs():
    with raises(TypeError, "images: expected a torch.Tensor, got ndarray of shape (4, 3, 8, 8)"):
        cutmix.CutMix(1.0, 3)(np.zeros((4, 3, 8, 8), np.float32), Y)
    with raises(TypeError, "images: expected a torch.Tensor, got list [[[[0.0]]]]"):
        cut_images([[[[0.0]]]], P)
    with raises(TypeError, "labels: expected a torch.Tensor, got list [0, 1, 2, 0]"):
        cutmix.CutMix(1.0, 3)(X, [0, 1, 2, 0])
    with raises(TypeError, "params: expected a cutmix.MixParams, got dict {}"):
        cut_images(X, {})
    with raises(TypeError, "params: expected a cutmix.MixParams, got NoneType None"):
        mix_images(X, None)
    with raises(TypeError, "size: expected (H, W) as two ints, got int 8"):
        cutmix.sample_cutmix(4, 8)
    with raises(TypeError, "batch_size: expected an int >= 1, got float 4.0"):
        cutmix.sample_cutmix(4.0, (8, 8))
    with raises(TypeError, "out: expected a torch.Tensor, got ndarray of shape (4, 3, 8, 8)"):
        cut_images(X, P, out=np.zeros((4, 3, 8, 8)))


# labels ------------------------------------------------------------------------------------------


def test_labels_count_differs_from_images():
    msg = "labels: expected 4 labels (one per image), got Tensor of shape (3,)"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, 3)(X, Y[:3])
    with raises(ValueError, msg):
        mix_labels(Y[:3], P, 3)
    with raises(
        ValueError, "labels: expected 4 labels (one per image), got Tensor of shape (5, 3)"
    ):
        cutmix.MixUp(1.0)(X, torch.rand(5, 3))


@pytest.mark.parametrize(("bad", "cls"), [(3, 3), (-1, -1), (7, 7)])
def test_labels_out_of_range(bad, cls):
    labels = torch.tensor([0, 1, bad, 0])
    msg = f"labels: expected class ids in [0, 3), got class id {cls}"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, 3)(X, labels)
    with raises(ValueError, msg):
        mix_labels(labels, P, 3)
    with raises(ValueError, msg):
        cutmix.mixed_cross_entropy(torch.zeros(4, 3), labels, P)


def test_float_labels_of_wrong_width():
    msg = "labels: expected (N, 3) float labels (num_classes=3), got Tensor of shape (4, 5)"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, 3)(X, torch.rand(4, 5))
    with raises(ValueError, msg):
        mix_labels(torch.rand(4, 5), P, 3)
    with raises(ValueError, "labels: expected class ids (N,) int64 or probabilities / multi-hot"):
        mix_labels(torch.rand(4, 3, 2), P)
    with raises(ValueError, "labels: expected class ids (N,) int64 or probabilities / multi-hot"):
        mix_labels(torch.rand(4), P)


def test_mix_labels_out_buffer_checked():
    with raises(ValueError, "out: expected a float32 tensor of shape (4, 3) on cpu, got Tensor of"):
        mix_labels(Y, P, 3, out=torch.zeros(4, 2))
    with raises(ValueError, "out: expected a float32 tensor of shape (4, 3) on cpu"):
        mix_labels(Y, P, 3, out=torch.zeros(4, 3, dtype=torch.float64))
    with raises(TypeError, "out: expected a torch.Tensor, got"):
        mix_labels(Y, P, 3, out=[[0.0] * 3] * 4)


def test_num_classes_missing_for_class_ids():
    msg = "num_classes: expected an int when labels are class ids, got None"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0)(X, Y)
    with raises(ValueError, msg):
        mix_labels(Y, P)
    with raises(ValueError, "num_classes: expected an int >= 1, got 0"):
        cutmix.CutMix(1.0, num_classes=0)
    with raises(TypeError, "num_classes: expected None or an int >= 1, got float 3.0"):
        cutmix.MixUp(1.0, num_classes=3.0)


# options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_alpha_not_positive_or_not_finite(alpha):
    msg = f"alpha: expected a positive finite float, got {alpha}"
    with raises(ValueError, msg):
        cutmix.CutMix(alpha)
    with raises(ValueError, msg):
        cutmix.MixUp(alpha)
    with raises(ValueError, msg):
        cutmix.sample_cutmix(4, (8, 8), alpha=alpha)
    with raises(ValueError, msg):
        cutmix.sample_mixup(4, alpha=alpha)


def test_alpha_wrong_type():
    with raises(TypeError, "alpha: expected a positive finite float, got str '1'"):
        cutmix.CutMix("1")
    with raises(TypeError, "alpha: expected a positive finite float, got bool True"):
        cutmix.MixUp(True)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_p_outside_unit_interval(p):
    msg = f"p: expected a float in [0, 1], got {p}"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, p=p)
    with raises(ValueError, msg):
        cutmix.MixUp(1.0, p=p)
    with raises(ValueError, msg):
        cutmix.sample_cutmix(4, (8, 8), p=p)


@pytest.mark.parametrize("bounds", [(0.5, 0.2), (-0.1, 0.5), (0.2, 1.5), (float("nan"), 0.5)])
def test_bad_area_bounds_values(bounds):
    msg = "area_bounds: expected 0 <= lo <= hi <= 1 (fractions of the image area), got"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, area_bounds=bounds)
    with raises(ValueError, msg):
        cutmix.sample_cutmix(4, (8, 8), area_bounds=bounds)


@pytest.mark.parametrize("bounds", [(0.5,), 0.5, "ab", (0.1, "x")])
def test_bad_area_bounds_kind(bounds):
    with raises(TypeError, "area_bounds: expected None or (lo, hi), two floats, got"):
        cutmix.CutMix(1.0, area_bounds=bounds)


def test_unknown_mode_or_placement():
    msg = "mode: expected one of 'batch', 'pair', 'sample', got 'pairs'"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, mode="pairs")
    with raises(ValueError, msg):
        cutmix.MixUp(1.0, mode="pairs")
    with raises(ValueError, msg):
        cutmix.sample_partners(4, mode="pairs")
    msg = "placement: expected one of 'center', 'inside', got 'random'"
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, placement="random")
    with raises(ValueError, msg):
        cutmix.sample_cutmix(4, (8, 8), placement="random")
    with raises(ValueError, "strategy: expected one of 'auto'"):
        cut_images(X, P, strategy="fastest")
    with raises(ValueError, "choose: expected one of 'batch', 'sample', got 'pixel'"):
        cutmix.RandomMix([cutmix.CutMix()], choose="pixel")


def test_label_smoothing_and_size():
    with raises(ValueError, "label_smoothing: expected a float in [0, 1), got 1.0"):
        mix_labels(Y, P, 3, label_smoothing=1.0)
    with raises(ValueError, "label_smoothing: expected a float in [0, 1), got -0.1"):
        cutmix.CutMix(1.0, label_smoothing=-0.1)
    with raises(ValueError, "size: expected positive H and W, got (0, 8)"):
        cutmix.sample_cutmix(4, (0, 8))


# generator ---------------------------------------------------------------------------------------


def test_generator_on_the_wrong_device():
    # A real mismatch without a GPU: sampling for tensors on the "meta" device with a CPU generator.
    cpu = torch.Generator().manual_seed(0)
    msg = "generator: expected a generator on meta (where the batch is), got one on cpu"
    with raises(ValueError, msg):
        cutmix.sample_cutmix(4, (8, 8), generator=cpu, device="meta")
    with raises(ValueError, msg):
        cutmix.sample_mixup(4, generator=cpu, device="meta")
    with raises(ValueError, msg):
        cutmix.sample_partners(4, generator=cpu, device="meta")
    meta_images = torch.empty(4, 3, 8, 8, device="meta")
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, 3).sample(meta_images, generator=cpu)
    with raises(ValueError, msg):
        cutmix.MixUp(1.0, 3).sample(meta_images, generator=cpu)
    with raises(ValueError, msg):
        cutmix.RandomMix([cutmix.CutMix(), cutmix.MixUp()], num_classes=3).sample(
            meta_images, generator=cpu
        )


def test_generator_of_the_wrong_kind():
    msg = "generator: expected None or a torch.Generator, got Generator"
    rng = np.random.default_rng(0)
    with raises(TypeError, msg):
        cutmix.sample_cutmix(4, (8, 8), generator=rng)
    with raises(TypeError, msg):
        cutmix.sample_cutmix(4, (8, 8), generator=rng, device="cpu")
    with raises(TypeError, "generator: expected None or a torch.Generator, got int 0"):
        cutmix.CutMix(1.0, 3)(X, Y, generator=0)


# params ------------------------------------------------------------------------------------------


def test_params_from_another_batch_size():
    msg = "params: expected params for a batch of 5, got params for a batch of 4"
    x5, y5 = torch.rand(5, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    with raises(ValueError, msg):
        cut_images(x5, P)
    with raises(ValueError, msg):
        mix_images(x5, P)
    with raises(ValueError, msg):
        cutmix.CutMix(1.0, 3).apply(x5, y5, P)
    with raises(ValueError, msg):
        cutmix.mixed_cross_entropy(torch.zeros(5, 3), y5, P)
    with raises(ValueError, msg):
        cutmix.mixed_binary_cross_entropy(torch.zeros(5), torch.tensor([0, 1, 1, 0, 1]), P)


def test_params_from_another_image_size():
    msg = "params: expected params for images of size (8, 9), got params for size (8, 8)"
    with raises(ValueError, msg):
        cut_images(torch.rand(4, 3, 8, 9), P)
    with raises(ValueError, msg):
        mix_images(torch.rand(4, 3, 8, 9), P)
    with raises(ValueError, "params: expected params for images of size (9, 8)"):
        cutmix.CutMix(1.0, 3).apply(torch.rand(4, 3, 9, 8), Y, P)
    mixup = cutmix.sample_mixup(4, (8, 8))
    with raises(ValueError, msg):
        mix_images(torch.rand(4, 3, 8, 9), mixup)
    # MixUp params drawn without a size fit any size.
    free = cutmix.sample_mixup(4)
    assert mix_images(torch.rand(4, 3, 8, 9), free).shape == (4, 3, 8, 9)


def test_mixup_params_given_to_cut_images():
    with raises(ValueError, "params: expected CutMix params with boxes"):
        cut_images(X, cutmix.sample_mixup(4, (8, 8)))


def test_out_and_inplace_misuse():
    with raises(ValueError, "out: expected a tensor like images (Tensor of shape (4, 3, 8, 8)"):
        cut_images(X, P, out=torch.empty(4, 3, 8, 7))
    with raises(ValueError, "out: expected a tensor like images"):
        mix_images(X, P, out=torch.empty(4, 3, 8, 8, dtype=torch.float64))
    with raises(ValueError, "out: expected no out= together with inplace=True, got both"):
        cut_images(X, P, out=torch.empty_like(X), inplace=True)
    with raises(ValueError, "out: expected a buffer other than images"):
        cut_images(X, P, out=X)
    # A view that shares part of the images' memory: a kernel would read what it already wrote.
    both = torch.rand(5, 3, 8, 8)
    with raises(ValueError, "out: expected a buffer that shares no memory with images, got a view"):
        cut_images(both[:4], P, out=both[1:])
    with raises(ValueError, "out: expected a buffer that shares no memory with images"):
        mix_images(both[1:], P, out=both[:4])
    wide = torch.rand(4, 3, 8, 16)  # side by side in one storage: no shared bytes, allowed
    assert cut_images(wide[..., :8], P, out=wide[..., 8:]).data_ptr() == wide[..., 8:].data_ptr()


# transforms, losses and collate ----------------------------------------------------------------


def test_transform_construction_errors():
    with raises(ValueError, "transforms: expected a non-empty list of CutMix / MixUp, got list []"):
        cutmix.RandomMix([])
    with raises(TypeError, "transforms: expected CutMix or MixUp instances, got str 'x'"):
        cutmix.RandomMix([cutmix.CutMix(), "x"])
    with raises(ValueError, "p: expected 2 non-negative weights with a positive sum"):
        cutmix.RandomMix([cutmix.CutMix(), cutmix.MixUp()], p=[1.0])
    with raises(ValueError, "p: expected 2 non-negative weights with a positive sum"):
        cutmix.RandomMix([cutmix.CutMix(), cutmix.MixUp()], p=[0.0, 0.0])
    with raises(TypeError, "mix: expected a CutMix, MixUp or RandomMix, got str 'x'"):
        cutmix.MixCollate("x")
    with raises(TypeError, "seed: expected None or an int, got float 1.5"):
        cutmix.MixCollate(cutmix.CutMix(), seed=1.5)
    with raises(TypeError, "collate_fn: expected a callable, got int 3"):
        cutmix.MixCollate(cutmix.CutMix(), collate_fn=3)


def test_loss_input_errors():
    with raises(TypeError, "logits: expected a floating-point tensor, got Tensor of shape (4, 3)"):
        cutmix.mixed_cross_entropy(torch.zeros(4, 3, dtype=torch.long), Y, P)
    with raises(ValueError, "labels: expected class ids of shape (N,) or (N, *S) matching logits"):
        cutmix.mixed_cross_entropy(torch.zeros(4, 3), Y.float(), P)
    with raises(ValueError, "logits: expected (N, C, ...) with N = 4, got Tensor of shape (5, 3)"):
        cutmix.mixed_cross_entropy(torch.zeros(5, 3), Y, P)
    with raises(ValueError, "targets: expected float targets shaped like logits (4, 3)"):
        cutmix.soft_target_cross_entropy(torch.zeros(4, 3), torch.zeros(4, 2))
    with raises(ValueError, "labels: expected class ids in [0, 2), got class id 2"):
        cutmix.mixed_binary_cross_entropy(torch.zeros(4), Y, P)
    with raises(ValueError, "logits: expected (4,) or (4, 1) for 0/1 labels"):
        cutmix.mixed_binary_cross_entropy(torch.zeros(4, 2), torch.tensor([0, 1, 1, 0]), P)
    with raises(ValueError, "reduction: expected one of 'mean', 'sum', 'none', got 'avg'"):
        cutmix.mixed_cross_entropy(torch.zeros(4, 3), Y, P, reduction="avg")


def test_collate_fn_must_return_a_pair():
    collate = cutmix.MixCollate(cutmix.CutMix(1.0, 3), collate_fn=lambda s: torch.stack(s), seed=0)
    with raises(TypeError, "collate_fn: expected a batch (images, labels), got Tensor"):
        collate([torch.rand(3, 4, 4), torch.rand(3, 4, 4)])


def test_params_on_another_device():
    meta = P.to("meta")
    with raises(ValueError, "params: expected params on cpu (where the images are), got on meta"):
        cut_images(X, meta)
    with raises(ValueError, "params: expected params on cpu (where the images are), got on meta"):
        mix_images(X, meta)
    with raises(ValueError, "params: expected params on cpu (where the labels are), got on meta"):
        mix_labels(Y, meta, 3)
