"""Preview grids: exact size, the pasted box outlined where MixParams say, weights written below."""

from __future__ import annotations

import pytest
import torch

np = pytest.importorskip("numpy")
pytest.importorskip("PIL")

import cutmix  # noqa: E402
from cutmix.preview import BOX_COLOR, PAD, grid_size, render_grid  # noqa: E402


def _params() -> cutmix.MixParams:
    return cutmix.MixParams(
        perm=torch.tensor([1, 0, 0]),
        lam=torch.tensor([1 - 12 / 64, 1.0, 1 - 4 / 64]),
        boxes=torch.tensor([[2, 3, 6, 6], [0, 0, 0, 0], [0, 0, 2, 2]]),
        size=(8, 8),
    )


def test_grid_size_and_box_outline_at_the_params_box() -> None:
    x = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)  # black images: only the outline is red
    y = torch.tensor([0, 1, 2])
    img = render_grid(x, y, _params(), classes=["cat", "dog", "emu"], cols=2, scale=4)
    assert (
        img.size
        == grid_size(3, 8, 8, cols=2, scale=4)
        == (2 * (64 + PAD) + PAD, 2 * (32 + 26 + PAD) + PAD)
    )
    a = np.asarray(img)
    x0 = PAD + (64 - 32) // 2  # first cell, centred in a 64-px wide column
    y0 = PAD
    red = np.all(a[..., :3] == BOX_COLOR, axis=-1)
    # Outline of box x 2..6, y 3..6 (half-open) at scale 4: corners (8, 12) and (23, 23).
    assert red[y0 + 12, x0 + 8] and red[y0 + 23, x0 + 23] and red[y0 + 12, x0 + 23]
    assert not red[y0 + 11, x0 + 8] and not red[y0 + 12, x0 + 24]
    assert not red[y0 + 17, x0 + 15]  # inside the outline: the (black) pixels
    # The unmixed second image has no outline at all.
    x1 = PAD + (64 + PAD) + (64 - 32) // 2
    assert not red[y0 : y0 + 32, x1 : x1 + 32].any()
    # Label weights are written under the images (dark text pixels in the text band).
    band = a[y0 + 32 : y0 + 32 + 26, x0 - 16 : x0 + 48]
    assert (band < 128).any()


def test_mixup_params_draw_no_box() -> None:
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    p = cutmix.MixParams(
        perm=torch.tensor([1, 0]), lam=torch.tensor([0.6, 0.7]), boxes=None, size=(8, 8)
    )
    a = np.asarray(render_grid(x, torch.tensor([0, 1]), p, cols=2, scale=2))
    assert not np.all(a[..., :3] == BOX_COLOR, axis=-1).any()


def test_label_text_uses_lambda() -> None:
    from cutmix.preview import _label_text

    assert _label_text(["dog", "cat"], 0, 1, 0.6) == ["dog: 0.60", "cat: 0.40"]
    assert _label_text(["dog", "cat"], 0, 0, 0.3) == ["dog: 0.30 + 0.70"]
    assert _label_text(["dog", "cat"], 1, 0, 1.0) == ["cat: 1.00"]


def test_dense_targets_are_drawn_mask_colours_and_object_boxes() -> None:
    from cutmix.preview import TARGET_BOX_COLOR, class_color

    p = _params()
    x = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    masks = torch.zeros(3, 8, 8, dtype=torch.long)
    masks[0, :, :4] = 2  # left half of image 0 is class 2; the rest background (left clear)
    masks[0, 0, 0] = 255  # ignore: left clear
    boxes = [torch.tensor([[4, 4, 8, 8]]), torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, 4)]
    labels = [torch.tensor([1]), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)]
    img = render_grid(
        x, None, p, masks=masks, target_boxes=boxes, target_labels=labels, cols=2, scale=4
    )
    a = np.asarray(img)[..., :3].astype(int)
    x0, y0 = PAD + (64 - 32) // 2, PAD
    tint = [round(0.45 * c) for c in class_color(2)]
    assert a[y0 + 8, x0 + 2].tolist() == tint  # pixel (x=0, y=2): class 2, tinted
    assert a[y0 + 1, x0 + 1].tolist() == [0, 0, 0]  # the ignore pixel stays clear
    assert a[y0 + 8, x0 + 4 * 5 + 2].tolist() == [0, 0, 0]  # background stays clear
    green = np.all(a == TARGET_BOX_COLOR, axis=-1)
    # Object box x 4..8, y 4..8 at scale 4: its outline runs from (16, 16) to (31, 31).
    assert green[y0 + 16, x0 + 31] and green[y0 + 31, x0 + 16]
    assert not green[y0 + 15, x0 + 16]


def test_dense_overlay_rejects_masks_of_another_size() -> None:
    x = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"masks: expected \(3, 8, 8\) class maps"):
        render_grid(x, None, _params(), masks=torch.zeros(3, 4, 4, dtype=torch.long))
