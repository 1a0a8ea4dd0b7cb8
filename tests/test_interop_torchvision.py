"""tv_tensors in, the same types out; the tv path equals the plain path for every box format."""

from __future__ import annotations

import pytest
import torch

import cutmix
from cutmix.dense import DenseMix, cut_boxes, cut_masks, mix_batch, mix_masks

tv_tensors = pytest.importorskip("torchvision.tv_tensors")
F = pytest.importorskip("torchvision.transforms.v2.functional")
v2 = pytest.importorskip("torchvision.transforms.v2")
from cutmix.interop.torchvision import boxes_from_xyxy, boxes_to_xyxy  # noqa: E402

FORMATS = ["XYXY", "XYWH", "CXCYWH"]
H, W = 12, 16


def _xyxy_batch(g, n=4):
    out = []
    for i in range(n):
        k = i  # 0, 1, 2, 3 boxes
        x1 = torch.rand(k, generator=g) * (W - 2)
        y1 = torch.rand(k, generator=g) * (H - 2)
        x2 = x1 + 1 + torch.rand(k, generator=g) * (W - 1 - x1)
        y2 = y1 + 1 + torch.rand(k, generator=g) * (H - 1 - y1)
        out.append(torch.stack([x1, y1, x2, y2], 1).reshape(k, 4))
    return out


def _to(fmt, xyxy):
    return F.convert_bounding_box_format(
        tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=(H, W)), new_format=fmt
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_tv_boxes_equal_plain_path(fmt):
    g = torch.Generator().manual_seed(0)
    xyxy = _xyxy_batch(g)
    labels = [torch.arange(len(b)) for b in xyxy]
    params = cutmix.sample_cutmix(4, (H, W), generator=g)
    tv_boxes = [_to(fmt, b) for b in xyxy]
    out = cut_boxes(tv_boxes, labels, params, min_visibility=0.1, return_weights=True)
    # The plain path: the same boxes as XYXY (converted by torchvision), then converted back.
    plain_xyxy = [
        F.convert_bounding_box_format(b, new_format="XYXY").as_subclass(torch.Tensor)
        for b in tv_boxes
    ]
    ref = cut_boxes(plain_xyxy, labels, params, min_visibility=0.1, return_weights=True)
    for b, rb, lab, rl, w, rw in zip(
        out.boxes, ref.boxes, out.labels, ref.labels, out.weights, ref.weights
    ):
        assert isinstance(b, tv_tensors.BoundingBoxes)
        assert b.format.name == fmt and tuple(b.canvas_size) == (H, W)
        torch.testing.assert_close(
            b.as_subclass(torch.Tensor), _to(fmt, rb).as_subclass(torch.Tensor)
        )
        assert torch.equal(lab, rl) and torch.equal(w, rw)


@pytest.mark.parametrize("fmt", FORMATS)
def test_mix_batch_with_tv_tensors_equals_plain(fmt):
    g = torch.Generator().manual_seed(1)
    n = 4
    images = torch.rand(n, 3, H, W, generator=g)
    xyxy = _xyxy_batch(g, n)
    maps = torch.randint(0, 5, (n, H, W), generator=g)
    params = cutmix.sample_cutmix(n, (H, W), generator=g)
    tv_targets = [
        {"boxes": _to(fmt, b), "labels": torch.arange(len(b)), "masks": tv_tensors.Mask(m)}
        for b, m in zip(xyxy, maps)
    ]
    plain_targets = [
        {
            "boxes": F.convert_bounding_box_format(t["boxes"], new_format="XYXY").as_subclass(
                torch.Tensor
            ),
            "labels": t["labels"],
            "masks": m,
        }
        for t, m in zip(tv_targets, maps)
    ]
    x, t = mix_batch(tv_tensors.Image(images), tv_targets, params)
    rx, rt = mix_batch(images, plain_targets, params)
    assert isinstance(x, tv_tensors.Image) and torch.equal(x.as_subclass(torch.Tensor), rx)
    for a, b in zip(t, rt):
        assert isinstance(a["boxes"], tv_tensors.BoundingBoxes) and a["boxes"].format.name == fmt
        torch.testing.assert_close(
            a["boxes"].as_subclass(torch.Tensor), _to(fmt, b["boxes"]).as_subclass(torch.Tensor)
        )
        assert isinstance(a["masks"], tv_tensors.Mask)
        assert torch.equal(a["masks"].as_subclass(torch.Tensor), b["masks"])
        assert torch.equal(a["labels"], b["labels"])


def test_masks_keep_their_type_and_instance_masks():
    g = torch.Generator().manual_seed(2)
    maps = tv_tensors.Mask(torch.randint(0, 3, (3, H, W), generator=g))
    params = cutmix.sample_cutmix(3, (H, W), generator=g)
    out = cut_masks(maps, params)
    assert isinstance(out, tv_tensors.Mask)
    assert torch.equal(
        out.as_subclass(torch.Tensor), cut_masks(maps.as_subclass(torch.Tensor), params)
    )
    mm = mix_masks(maps, cutmix.sample_mixup(3, (H, W), generator=g))
    assert isinstance(mm.masks, tv_tensors.Mask) and isinstance(mm.partner, tv_tensors.Mask)
    # Per-instance tv Masks in detection targets.
    boxes = [
        tv_tensors.BoundingBoxes(
            torch.tensor([[0.0, 0.0, W, H]]), format="XYWH", canvas_size=(H, W)
        )
    ] * 3
    inst = [tv_tensors.Mask(torch.ones(1, H, W, dtype=torch.uint8))] * 3
    # XYWH [0, 0, W, H] is the whole image.
    _, t = mix_batch(
        torch.rand(3, 3, H, W),
        [{"boxes": b, "labels": torch.tensor([1]), "masks": m} for b, m in zip(boxes, inst)],
        params,
        min_visibility=0.0,
    )
    for d in t:
        assert (
            isinstance(d["masks"], tv_tensors.Mask) and d["masks"].shape[0] == d["boxes"].shape[0]
        )


def test_in_a_v2_pipeline():
    """Per-sample v2 transforms, then DenseMix on the batch, where v2.CutMix refuses boxes."""
    g = torch.Generator().manual_seed(3)
    per_sample = v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.ToDtype(torch.float32, scale=True)])
    samples = []
    for i in range(4):
        img = tv_tensors.Image(torch.randint(0, 256, (3, H, W), dtype=torch.uint8, generator=g))
        tgt = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.tensor([[4.0, 5.0, 4.0, 6.0]]), format="CXCYWH", canvas_size=(H, W)
            ),
            "labels": torch.tensor([i]),
            "masks": tv_tensors.Mask(torch.zeros(1, H, W, dtype=torch.uint8)),
        }
        samples.append(per_sample(img, tgt))
    images = tv_tensors.wrap(torch.stack([s[0] for s in samples]), like=samples[0][0])
    targets = [s[1] for s in samples]
    x, t = DenseMix(cutmix.CutMix(1.0), min_visibility=0.0)(images, targets, generator=g)
    assert isinstance(x, tv_tensors.Image) and x.shape == (4, 3, H, W)
    assert all(d["boxes"].format.name == "CXCYWH" for d in t)
    with pytest.raises((TypeError, ValueError)):
        v2.CutMix(num_classes=4)(images, targets)  # torchvision's own refuses this batch


def test_conversion_helpers_and_rotated_boxes_refused():
    b = tv_tensors.BoundingBoxes(
        torch.tensor([[4.0, 4.0, 2.0, 2.0]]), format="CXCYWH", canvas_size=(8, 8)
    )
    xyxy, metas = boxes_to_xyxy([b, torch.zeros(0, 4)])
    assert xyxy[0].tolist() == [[3.0, 3.0, 5.0, 5.0]] and metas[1] is None
    back = boxes_from_xyxy(xyxy, metas)
    assert back[0].format.name == "CXCYWH" and back[0].tolist() == [[4.0, 4.0, 2.0, 2.0]]
    if hasattr(tv_tensors.BoundingBoxFormat, "XYWHR"):
        rot = tv_tensors.BoundingBoxes(
            torch.tensor([[1.0, 1.0, 2.0, 2.0, 0.0]]), format="XYWHR", canvas_size=(8, 8)
        )
        with pytest.raises(
            ValueError,
            match=r"boxes\[0\]: expected axis-aligned boxes \(XYXY, XYWH or CXCYWH\), got XYWHR",
        ):
            cut_boxes([rot], [torch.tensor([1])], cutmix.identity_params(1, (8, 8)))
