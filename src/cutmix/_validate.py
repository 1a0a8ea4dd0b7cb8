"""Every input check of the library and its message.

One style for every message: ``"<argument>: expected <what>, got <what came>"``; ``TypeError`` for the
wrong kind of thing, ``ValueError`` for the right kind with a wrong value. Checks that would need the
device's values (label ranges) run eagerly on CPU tensors only, and as asynchronous device asserts on
accelerators, so validation never synchronises a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# The partner modes and box placements (re-exported by cutmix.params).
MODES: tuple[str, ...] = ("batch", "pair", "sample")
PLACEMENTS: tuple[str, ...] = ("center", "inside")


def describe(value: Any) -> str:
    """A short description of what came, for error messages."""
    if isinstance(value, Tensor):
        return f"Tensor of shape {tuple(value.shape)}, dtype {value.dtype}, on {value.device}"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:  # NumPy arrays and other array-likes
        return f"{type(value).__name__} of shape {shape}, dtype {dtype}"
    text = " ".join(repr(value).split())
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def fail(name: str, expected: str, got: Any, *, kind: type[Exception] = ValueError) -> NoReturn:
    raise kind(f"{name}: expected {expected}, got {got}")


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def check_tensor(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        fail(name, "a torch.Tensor", describe(value), kind=TypeError)
    return value


def check_batch_size(n: Any, name: str = "batch_size") -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        fail(name, "an int >= 1", describe(n), kind=TypeError)
    if n < 1:
        fail(name, "at least one sample (an empty batch cannot be mixed)", n)
    return n


def check_size(size: Any, name: str = "size") -> tuple[int, int]:
    ok = (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    )
    if not ok:
        fail(name, "(H, W) as two ints", describe(size), kind=TypeError)
    if size[0] < 1 or size[1] < 1:
        fail(name, "positive H and W", tuple(size))
    return int(size[0]), int(size[1])


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        fail(name, "a positive finite float", describe(alpha), kind=TypeError)
    if not math.isfinite(alpha) or alpha <= 0:
        fail(name, "a positive finite float", alpha)
    return float(alpha)


def check_probability(p: Any, name: str = "p") -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        fail(name, "a float in [0, 1]", describe(p), kind=TypeError)
    if not (0.0 <= p <= 1.0):
        fail(name, "a float in [0, 1]", p)
    return float(p)


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        fail(name, "one of " + ", ".join(repr(c) for c in choices), repr(value))
    return value


def check_mode(mode: Any) -> str:
    return check_choice(mode, MODES, "mode")


def check_placement(placement: Any) -> str:
    return check_choice(placement, PLACEMENTS, "placement")


def check_area_bounds(bounds: Any, name: str = "area_bounds") -> tuple[float, float] | None:
    if bounds is None:
        return None
    ok = isinstance(bounds, Sequence) and len(bounds) == 2
    ok = ok and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
    if not ok:
        fail(name, "None or (lo, hi), two floats", describe(bounds), kind=TypeError)
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (0.0 <= lo <= hi <= 1.0):
        fail(name, "0 <= lo <= hi <= 1 (fractions of the image area)", (lo, hi))
    return lo, hi


def check_smoothing(value: Any, name: str = "label_smoothing") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(name, "a float in [0, 1)", describe(value), kind=TypeError)
    if not (0.0 <= value < 1.0):
        fail(name, "a float in [0, 1)", value)
    return float(value)


def check_num_classes(num_classes: Any, name: str = "num_classes") -> int | None:
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        fail(name, "None or an int >= 1", describe(num_classes), kind=TypeError)
    if num_classes < 1:
        fail(name, "an int >= 1", num_classes)
    return num_classes


def check_generator(generator: Any, name: str = "generator") -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        fail(name, "None or a torch.Generator", describe(generator), kind=TypeError)
    return generator


def check_generator_device(
    generator: Any, device: torch.device, name: str = "generator"
) -> torch.Generator | None:
    if check_generator(generator, name) is None:
        return None
    if generator.device.type != device.type:
        fail(
            name, f"a generator on {device.type} (where the batch is)", f"one on {generator.device}"
        )
    return generator


def check_images(images: Any, name: str = "images") -> Tensor:
    images = check_tensor(images, name)
    if images.dim() != 4:
        fail(name, "a 4-D tensor (N, C, H, W)", describe(images))
    if images.dtype not in FLOAT_DTYPES and images.dtype != torch.uint8:
        fail(name, "a floating-point or uint8 tensor", describe(images), kind=TypeError)
    if images.shape[0] < 1:
        fail(name, "at least one sample (an empty batch cannot be mixed)", describe(images))
    return images


def check_labels(
    labels: Any, batch_size: int, num_classes: int | None, name: str = "labels"
) -> int:
    """Check class ids ``(N,)`` or soft / multi-hot ``(N, C)`` labels; return the class count."""
    labels = check_tensor(labels, name)
    if labels.dim() == 0 or labels.shape[0] != batch_size:
        fail(name, f"{batch_size} labels (one per image)", describe(labels))
    if labels.dtype == torch.bool or labels.is_floating_point():
        if labels.dim() != 2:
            fail(
                name,
                "class ids (N,) int64 or probabilities / multi-hot (N, C) float",
                describe(labels),
            )
        if num_classes is not None and labels.shape[1] != num_classes:
            fail(
                name,
                f"(N, {num_classes}) float labels (num_classes={num_classes})",
                describe(labels),
            )
        return int(labels.shape[1])
    if labels.is_complex() or labels.dim() != 1:
        fail(name, "class ids (N,) of an integer dtype, or (N, C) float", describe(labels))
    if num_classes is None:
        fail("num_classes", "an int when labels are class ids", None)
    check_class_range(labels, num_classes, name)
    return num_classes


def check_targets_out(out: Any, batch_size: int, num_classes: int, device: torch.device) -> None:
    """An ``out=`` buffer for soft targets: float32 ``(N, C)`` on the labels' device."""
    out = check_tensor(out, "out")
    if out.shape != (batch_size, num_classes) or out.dtype != torch.float32 or out.device != device:
        fail(
            "out",
            f"a float32 tensor of shape ({batch_size}, {num_classes}) on {device}",
            describe(out),
        )
    _check_writable(out, "out", "out=")
    _check_not_grad_leaf(out)


def _check_not_grad_leaf(out: Tensor) -> None:
    """A leaf that requires grad cannot be written (PyTorch refuses it); a buffer with grad
    history (written by a differentiable call before) is written through ``copy_``."""
    if out.requires_grad and out.is_leaf and torch.is_grad_enabled():
        fail(
            "out",
            "a buffer that is not a leaf requiring grad (out= writes are recorded by autograd, "
            "a leaf cannot be written)",
            "a leaf tensor with requires_grad=True",
        )


def check_class_range(labels: Tensor, num_classes: int, name: str = "labels") -> None:
    """Class ids in ``[0, num_classes)``; eager on CPU, an async device assert elsewhere."""
    if _compiling() or labels.numel() == 0:
        return
    if labels.device.type == "cpu":
        lo, hi = (int(v) for v in torch.aminmax(labels))
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            fail(name, f"class ids in [0, {num_classes})", f"class id {bad}")
    else:
        ok = ((labels >= 0) & (labels < num_classes)).all()
        torch._assert_async(ok, f"{name}: expected class ids in [0, {num_classes})")


def check_inplace_out(images: Tensor, inplace: bool, out: Tensor | None) -> None:
    """``inplace`` / ``out=`` targets the kernels can write: no negative or conjugate bit (raw
    writes would ignore it), no element written twice (stride 0), no memory shared with the input."""
    if inplace:
        _check_writable(images, "images", "inplace=True")
    if out is None:
        return
    check_tensor(out, "out")
    if inplace:
        fail("out", "no out= together with inplace=True", "both")
    if out.shape != images.shape or out.dtype != images.dtype or out.device != images.device:
        fail("out", f"a tensor like images ({describe(images)})", describe(out))
    same = out is images or (out.device.type != "meta" and out.data_ptr() == images.data_ptr())
    if same:  # meta tensors have no memory: every data_ptr() is 0
        fail("out", "a buffer other than images (use inplace=True to write into images)", "images")
    _check_writable(out, "out", "out=")
    _check_not_grad_leaf(out)
    if _spans_overlap(out, images):
        fail("out", "a buffer that shares no memory with images", "a view overlapping images")


def _check_writable(t: Tensor, name: str, how: str) -> None:
    if _compiling():
        return
    if t.is_neg() or t.is_conj():
        fail(
            name,
            f"a tensor without the negative / conjugate view bit for {how}",
            "a lazily negated view (call .resolve_neg() / .resolve_conj() first)",
        )
    if t.device.type != "meta" and torch._debug_has_internal_overlap(t) == 1:
        fail(
            name,
            f"a tensor whose elements do not share memory for {how}",
            f"an expanded (stride 0) view with strides {t.stride()}",
        )


def _spans_overlap(a: Tensor, b: Tensor) -> bool:
    """Whether two tensors of one dtype share an element of memory (exact for any strides).

    Views side by side in one storage (the two halves of each row) share none and are allowed.
    """
    if a.device != b.device or a.numel() == 0 or b.numel() == 0 or a.device.type == "meta":
        return False
    if a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr():
        return False
    (a0, a1), (b0, b1) = _span(a), _span(b)
    if a1 <= b0 or b1 <= a0:
        return False
    # Interleaved spans (rare): mark a's elements in a map of the common span, look for b's.
    lo = min(a0, b0)
    marks = torch.zeros(max(a1, b1) - lo, dtype=torch.bool)
    marks.as_strided(a.shape, a.stride(), a0 - lo).fill_(True)
    return bool(marks.as_strided(b.shape, b.stride(), b0 - lo).any())


def _span(t: Tensor) -> tuple[int, int]:
    """First and one-past-last storage element a (non-negatively strided) tensor can address."""
    start = int(t.storage_offset())
    return start, start + 1 + sum((int(d) - 1) * s for d, s in zip(t.shape, t.stride()))
