"""Decoding one image file of an image folder: the size checks, the bit-depth policy, the resize.

- Size: Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) applies, its warning
  turned into a refusal; an image whose sides differ by more than ``MAX_ASPECT`` times is refused too.
  Refused files are skipped like unreadable ones, with the reason in the warning.
- Bit depth: 8-bit images are converted to RGB as they are. 16-bit integer images (Pillow modes
  ``I;16*``, and ``I`` when all values lie in 0..65535) are scaled from 0..65535 to 0..255; other
  32-bit integer images and float images (mode ``F``) are scaled from their own [min, max] to 0..255
  (floats already in [0, 1] from 0..1); NaN becomes 0. Nothing is clipped.
- Resize: the shorter side is resized to ``size`` (bilinear) and the centre square cropped; for
  images more than 8 times longer than wide (or the reverse) the centre square is resampled
  straight to ``size × size`` instead, so the intermediate never exceeds ``8·size²`` pixels.

Example:
    >>> from PIL import Image
    >>> import numpy as np
    >>> im = Image.fromarray(np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8))
    >>> a = to_rgb8(im)
    >>> a.mode, np.asarray(a)[0, 0].tolist(), np.asarray(a)[7, 7].tolist()
    ('RGB', [0, 0, 0], [255, 255, 255])
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MAX_ASPECT", "ImageRefused", "decode_image", "to_rgb8"]

MAX_ASPECT = 32
_DIRECT = 8  # up to 8:1 the resize then crop of before; beyond, the bounded centre-box resample


class ImageRefused(ValueError):
    """An image that is not decoded on purpose (too large, absurd aspect ratio)."""


def _scale(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float64), nan=lo, posinf=hi, neginf=lo)
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.round((a - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)


def to_rgb8(im: Any) -> Any:
    """An RGB 8-bit copy of a Pillow image, high bit depths scaled by their range (see the module)."""
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im)
        if mode.startswith("I;16") or (
            mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535
        ):
            g = _scale(a, 0.0, 65535.0)
        else:
            finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
            lo = float(finite.min()) if finite.size else 0.0
            hi = float(finite.max()) if finite.size else 0.0
            if mode == "F" and lo >= 0.0 and hi <= 1.0:
                lo, hi = 0.0, 1.0
            g = _scale(a, lo, hi)
        return Image.fromarray(g, mode="L").convert("RGB")
    return im.convert("RGB")


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """``path`` as a uint8 ``(3, size, size)`` array: the centre square, resampled (see the module)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im_file = Image.open(path)
        except Image.DecompressionBombWarning as e:
            raise ImageRefused(
                f"larger than Pillow's limit of {Image.MAX_IMAGE_PIXELS} pixels"
            ) from e
        with im_file as im:
            w, h = im.size
            if min(w, h) < 1 or max(w, h) > MAX_ASPECT * min(w, h):
                raise ImageRefused(f"aspect ratio {w}x{h} beyond {MAX_ASPECT}:1")
            im = to_rgb8(im)
            if (w, h) != (size, size):
                scale = size / min(w, h)
                nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
                if (
                    nw * nh <= _DIRECT * size * size
                ):  # the shorter side resized, then the centre crop
                    im = im.resize((nw, nh), Image.Resampling.BILINEAR)
                    left, top = (nw - size) // 2, (nh - size) // 2
                    im = im.crop((left, top, left + size, top + size))
                else:  # long strips: the centre square resampled directly (no large intermediate)
                    side = min(w, h)
                    x0, y0 = (w - side) / 2, (h - side) / 2
                    box = (x0, y0, x0 + side, y0 + side)
                    im = im.resize((size, size), Image.Resampling.BILINEAR, box=box)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
