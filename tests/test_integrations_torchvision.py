"""cutmix.integrations.torchvision: v2 transforms over v2's structures, tv_tensors, video, boxes."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision")
from torchvision import tv_tensors
from torchvision.transforms import v2

import cutmix
from cutmix.functional import apply_images, mix_labels
from cutmix.integrations.torchvision import CutMix, MixUp, box_labels_getter


def _expected(x: torch.Tensor, y: torch.Tensor, params: cutmix.MixParams, c: int):
    return apply_images(x.as_subclass(torch.Tensor), params), mix_labels(y, params, c)


@pytest.mark.parametrize("cls", [CutMix, MixUp])
def test_is_a_v2_transform_with_v2_arguments(cls: type) -> None:
    t = cls(alpha=0.5, num_classes=4, labels_getter="default")
    assert isinstance(t, v2.Transform)
    assert t._mix.alpha == 0.5 and t.num_classes == 4


@pytest.mark.parametrize("cls", [CutMix, MixUp])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_tuple_in_tuple_out_same_as_the_kernels(cls: type, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    x = tv_tensors.Image(torch.randint(0, 256, (6, 3, 9, 7)).to(dtype))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    t = cls(num_classes=4)
    out = t(x, y)
    assert isinstance(out, tuple) and len(out) == 2
    mixed, targets = out
    assert type(mixed) is tv_tensors.Image and mixed.dtype == dtype
    want_x, want_t = _expected(x, y, t.last_params, 4)
    assert torch.equal(mixed.as_subclass(torch.Tensor), want_x)
    assert torch.equal(targets, want_t)
    assert not torch.equal(mixed.as_subclass(torch.Tensor), x.as_subclass(torch.Tensor))


def test_dict_in_dict_out_other_entries_untouched() -> None:
    x = tv_tensors.Image(torch.rand(4, 3, 8, 8))
    sample = {"image": x, "label": torch.arange(4), "ids": ["a", "b", "c", "d"], "n": 4}
    out = CutMix(num_classes=5)(sample)
    assert type(out) is dict and list(out) == list(sample)
    assert out["ids"] == sample["ids"] and out["n"] == 4
    assert type(out["image"]) is tv_tensors.Image and out["label"].shape == (4, 5)


def test_soft_labels_and_custom_labels_getter() -> None:
    x = torch.rand(4, 3, 8, 8)
    soft = torch.softmax(torch.rand(4, 6), 1)
    t = CutMix(labels_getter=lambda inputs: inputs["y"])
    out = t({"x": x, "y": soft})
    _, want = _expected(x, soft, t.last_params, 6)
    assert torch.allclose(out["y"], want) and out["x"].shape == x.shape


def test_composes_in_a_v2_pipeline() -> None:
    pipe = v2.Compose([v2.ToDtype(torch.float32, scale=True), CutMix(num_classes=3)])
    x, t = pipe(tv_tensors.Image(torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)),
                torch.tensor([0, 2]))  # fmt: skip
    assert type(x) is tv_tensors.Image and x.dtype == torch.float32 and t.shape == (2, 3)


@pytest.mark.parametrize("cls", [CutMix, MixUp])
def test_video_one_box_per_clip_same_in_every_frame(cls: type) -> None:
    n, frames = 4, 5
    torch.manual_seed(1)
    video = tv_tensors.Video(torch.randint(0, 256, (n, frames, 3, 10, 12), dtype=torch.uint8))
    t = cls(num_classes=4)
    mixed, _ = t(video, torch.arange(n))
    assert type(mixed) is tv_tensors.Video and mixed.dtype == torch.uint8
    p = t.last_params
    plain, src = mixed.as_subclass(torch.Tensor), video.as_subclass(torch.Tensor)
    for f in range(frames):  # every frame is the frame mixed with the same params
        assert torch.equal(plain[:, f], apply_images(src[:, f].contiguous(), p))
    if cls is CutMix:
        assert p.boxes.shape == (n, 4)


def test_detection_targets_mixed_like_densemix() -> None:
    torch.manual_seed(2)
    images = tv_tensors.Image(torch.rand(3, 3, 16, 16))
    targets = [
        {
            "boxes": tv_tensors.BoundingBoxes(
                torch.tensor([[1.0, 1.0, 9.0, 9.0], [4.0, 2.0, 15.0, 14.0]]),
                format="XYXY",
                canvas_size=(16, 16),
            ),
            "labels": torch.tensor([1, 2]),
            "image_id": k,
        }
        for k in range(3)
    ]
    t = CutMix()
    x, out = t(images, targets)
    want_x, want_t = cutmix.mix_batch(images, targets, t.last_params)
    assert type(x) is tv_tensors.Image and torch.equal(x.as_subclass(torch.Tensor),
                                                        want_x.as_subclass(torch.Tensor))  # fmt: skip
    for got, want in zip(out, want_t):
        assert set(got) == set(want) == {"boxes", "labels", "box_weights", "image_id"}
        assert type(got["boxes"]) is tv_tensors.BoundingBoxes
        for k in ("boxes", "labels", "box_weights"):
            assert torch.equal(got[k].as_subclass(torch.Tensor), want[k].as_subclass(torch.Tensor))


def test_batch_masks_in_a_dict_are_cut_with_the_images() -> None:
    images = torch.zeros(2, 1, 8, 8)
    images[1] = 1
    masks = tv_tensors.Mask(torch.stack([torch.zeros(8, 8), torch.ones(8, 8)]).long())
    t = CutMix()
    out = t({"image": images, "masks": masks})
    assert type(out["masks"]) is tv_tensors.Mask
    # the masks follow the pixels exactly: mask == image value everywhere
    assert torch.equal(out["masks"].as_subclass(torch.Tensor).float(), out["image"][:, 0])


def test_box_weights_stay_aligned_after_sanitize_bounding_boxes() -> None:
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[0.0, 0.0, 6.0, 6.0], [2.0, 2.0, 2.5, 9.0], [1.0, 1.0, 7.0, 4.0],
                      [3.0, 3.0, 8.0, 8.0]]),
        format="XYXY", canvas_size=(10, 10),
    )  # fmt: skip
    targets = [{"boxes": boxes, "labels": torch.tensor([1, 2, 3, 4])} for _ in range(2)]
    images = tv_tensors.Image(torch.rand(2, 3, 10, 10))
    _, mixed = CutMix(p=0.0)(images, targets)  # p=0: nothing pasted, all four boxes kept
    assert len(mixed[0]["box_weights"]) == 4
    # The default labels_getter filters labels but not box_weights: 3 boxes against 4 weights.
    _, default = v2.SanitizeBoundingBoxes()(images[0], dict(mixed[0]))
    assert len(default["boxes"]) == 3 and len(default["box_weights"]) == 4
    # box_labels_getter filters every per-box entry with the boxes.
    _, fixed = v2.SanitizeBoundingBoxes(labels_getter=box_labels_getter)(images[0], dict(mixed[0]))
    assert len(fixed["boxes"]) == len(fixed["labels"]) == len(fixed["box_weights"]) == 3
    assert fixed["labels"].tolist() == [1, 3, 4]


def test_errors_name_the_argument() -> None:
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="num_classes"):
        CutMix()(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        CutMix(num_classes=3)(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels"):
        CutMix(num_classes=3, labels_getter=None)(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels_getter"):
        CutMix(labels_getter="first")
    with pytest.raises(ValueError, match="BoundingBoxes"):
        box = tv_tensors.BoundingBoxes(torch.zeros(1, 4), format="XYXY", canvas_size=(4, 4))
        CutMix()({"image": x, "boxes": box})


@pytest.mark.parametrize("cls", [cutmix.CutMix, cutmix.MixUp])
def test_core_transforms_keep_the_image_type(cls: type) -> None:
    mix = cls(1.0, num_classes=3)
    g = torch.Generator().manual_seed(0)
    x = tv_tensors.Image(torch.rand(4, 3, 6, 6))
    out, t = mix(x, torch.tensor([0, 1, 2, 0]), generator=g)
    assert type(out) is tv_tensors.Image and t.shape == (4, 3)
    plain, _ = mix(torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 2, 0]), generator=g)
    assert type(plain) is torch.Tensor
    rm = cutmix.RandomMix([cutmix.CutMix(1.0), cutmix.MixUp(0.2)], num_classes=3)
    assert type(rm(x, torch.tensor([0, 1, 2, 0]))[0]) is tv_tensors.Image


def test_a_bare_tensor_has_no_labels() -> None:
    with pytest.raises(ValueError, match="labels"):
        CutMix(num_classes=3)(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="labels"):
        CutMix(num_classes=3)((torch.rand(2, 3, 4, 4),))


def test_one_tuple_argument_and_extra_items() -> None:
    x, y = torch.rand(4, 3, 6, 6), torch.arange(4)
    before = x.clone()
    out = CutMix(num_classes=4)((x, y, "meta"))
    assert isinstance(out, tuple) and len(out) == 3 and out[2] == "meta"
    assert out[1].shape == (4, 4) and torch.equal(x, before)  # the input is not modified
    assert not torch.equal(out[0], before)
