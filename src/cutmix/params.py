"""All randomness of the library: draw :class:`MixParams` for CutMix and MixUp.

A :class:`MixParams` says who is mixed with whom (``perm``), how much of each sample stays its own
(``lam``) and, for CutMix, which box is pasted (``boxes``). Every sampler takes ``generator=`` and
``device=``; it draws on that device and never synchronises with the host, so the same seed gives the
same params (on the same device) and sampling can run ahead of the GPU.

Example:
    >>> import torch, cutmix
    >>> g = torch.Generator().manual_seed(0)
    >>> p = cutmix.sample_cutmix(4, (32, 32), alpha=1.0, generator=g)
    >>> p.lam.shape, p.boxes.shape, p.size
    (torch.Size([4]), torch.Size([4, 4]), (32, 32))
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from cutmix import _validate as V
from cutmix._validate import MODES, PLACEMENTS
from cutmix.partners import (
    ClassWeights,
    _weighted_partners,
    class_weights_from_counts,
    partner_weights,
)
from cutmix.partners import check_class_weights as check_class_weights

Mode = Literal["batch", "pair", "sample"]
Placement = Literal["center", "inside"]

__all__ = [
    "MODES",
    "PLACEMENTS",
    "MixParams",
    "class_weights_from_counts",
    "identity_params",
    "partner_weights",
    "sample_beta",
    "sample_cutmix",
    "sample_mixup",
    "sample_partners",
]


@dataclass(frozen=True)
class MixParams:
    """What one mixing step does to a batch; immutable, device-resident, replayable.

    Attributes:
        perm: int64 ``(N,)``; sample ``i`` is mixed with sample ``perm[i]``.
        lam: float32 ``(N,)``; the fraction of sample ``i`` that stays its own (its pixels for
            CutMix, its blend weight for MixUp), hence the weight of its own label.
        boxes: int64 ``(N, 4)`` as ``x1, y1, x2, y2``, half-open pixel coordinates of the region
            pasted from ``perm[i]`` (zero area where nothing is pasted), or ``None`` for MixUp.
        size: the ``(H, W)`` the params were drawn for; applying them to another size is an error.
            ``None`` only for MixUp params drawn without a size (then any size is accepted).
        blend: bool ``(N,)`` marking samples mixed by blending (MixUp) rather than by a box, or
            ``None`` when no sample is blended (pure CutMix) or every sample is (``boxes is None``).
            Only :class:`cutmix.RandomMix` in per-sample mode produces it.

    Built by hand, the fields are checked at once (shapes, dtypes, one device; metadata only, so
    no host sync): ``ValueError`` / ``TypeError`` naming ``params.<field>``. Other integer dtypes
    of ``perm`` and ``boxes`` become int64. Values (partners in ``[0, N)``, ``0 <= λ <= 1``, boxes
    ordered and inside the image) are checked on CPU by every public function before it writes
    anything. On CUDA they are not (that would synchronise): there a partner out of range raises a
    device-side assert, and the kernels select pixels with a mask built from the box, so nothing is
    ever written outside the box clipped to the image (an inverted box is empty).
    """

    perm: Tensor
    lam: Tensor
    boxes: Tensor | None
    size: tuple[int, int] | None
    blend: Tensor | None = None

    def __post_init__(self) -> None:
        # Metadata only (shape, dtype, device): no host sync, and torch.compile traces it away.
        # Values (ranges) are checked by _check_values at the public entry points, on CPU.
        perm = _field(self.perm, "perm")
        not_int = perm.dtype == torch.bool or perm.is_floating_point() or perm.is_complex()
        if perm.dim() != 1 or not_int:
            kind = ValueError if perm.dim() != 1 else TypeError
            V.fail(
                "params.perm",
                "an integer (N,) tensor of partner indices",
                V.describe(perm),
                kind=kind,
            )
        n, dev = perm.shape[0], perm.device
        lam = _field(self.lam, "lam")
        if not lam.is_floating_point():
            V.fail("params.lam", "a floating-point (N,) tensor", V.describe(lam), kind=TypeError)
        if lam.shape != (n,):
            V.fail("params.lam", f"shape ({n},) like perm", V.describe(lam))
        boxes = self.boxes
        if boxes is not None:
            boxes = _field(boxes, "boxes")
            if boxes.dtype == torch.bool or boxes.is_floating_point() or boxes.is_complex():
                V.fail(
                    "params.boxes",
                    "an integer (N, 4) tensor or None",
                    V.describe(boxes),
                    kind=TypeError,
                )
            if boxes.shape != (n, 4):
                V.fail("params.boxes", f"shape ({n}, 4) as x1, y1, x2, y2", V.describe(boxes))
        if self.blend is not None:
            blend = _field(self.blend, "blend")
            if blend.dtype != torch.bool or blend.shape != (n,):
                kind = TypeError if blend.dtype != torch.bool else ValueError
                V.fail(
                    "params.blend", f"a bool ({n},) tensor or None", V.describe(blend), kind=kind
                )
        for name, t in (("lam", lam), ("boxes", boxes), ("blend", self.blend)):
            if t is not None and t.device != dev:
                V.fail(f"params.{name}", f"a tensor on {dev} (where perm is)", f"one on {t.device}")
        size = self.size
        if size is not None:
            try:
                hw: tuple[int, ...] = tuple(operator.index(s) for s in size)
            except TypeError:
                hw = ()
            if len(hw) != 2 or any(isinstance(s, bool) for s in size):
                V.fail(
                    "params.size", "None or (H, W) as two ints", V.describe(size), kind=TypeError
                )
            if hw[0] < 1 or hw[1] < 1:
                V.fail("params.size", "positive H and W", hw)
            if type(size) is not tuple or any(type(s) is not int for s in size):
                object.__setattr__(self, "size", (int(hw[0]), int(hw[1])))
        # Other integer dtypes are exact as int64, which every kernel indexes with.
        if perm.dtype != torch.int64:
            object.__setattr__(self, "perm", perm.to(torch.int64))
        if boxes is not None and boxes.dtype != torch.int64:
            object.__setattr__(self, "boxes", boxes.to(torch.int64))

    def _check_values(self, size: tuple[int, int] | None = None) -> None:
        """Refuse out-of-range values (ValueError naming ``params``) before anything is written.

        ``size`` is the ``(H, W)`` the boxes must lie in (default: ``self.size``). On CPU (eager)
        the check is a few ops over ``N`` values. On other devices it is skipped, as it would
        synchronise with the host: there partners out of range raise a device-side assert in the
        gather, and the kernels select pixels with a mask built from the box, so nothing is ever
        written outside ``[x1, x2) x [y1, y2)`` clipped to the image (an inverted box is empty).
        """
        if self.perm.device.type != "cpu" or V._compiling():
            return
        # A handful of ops on N values; the details are looked for only once something is wrong.
        n = self.perm.shape[0]
        if n == 0:
            return
        lo, hi = (int(v) for v in torch.aminmax(self.perm))
        if lo < 0 or hi >= n:
            i = int(((self.perm < 0) | (self.perm >= n)).nonzero()[0])
            V.fail(
                "params.perm", f"partner indices in [0, {n})", f"{int(self.perm[i])} for sample {i}"
            )
        flo, fhi = (float(v) for v in torch.aminmax(self.lam.detach()))
        if not (flo >= 0 and fhi <= 1):  # NaN fails too
            i = int((~((self.lam >= 0) & (self.lam <= 1))).nonzero()[0])
            V.fail("params.lam", "finite values in [0, 1]", f"{float(self.lam[i])} for sample {i}")
        if self.boxes is None:
            return
        b = self.boxes
        hw = self.size if size is None else size
        x2_max, y2_max = b[:, 2:].amax(0).tolist()
        bad = int(b.min()) < 0 or int((b[:, 2:] - b[:, :2]).min()) < 0
        if bad or (hw is not None and (x2_max > hw[1] or y2_max > hw[0])):
            lo_ok = (b >= 0).all(1) & (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
            if hw is not None:
                lo_ok &= (b[:, 2] <= hw[1]) & (b[:, 3] <= hw[0])
            i = int((~lo_ok).nonzero()[0])
            inside = "" if hw is None else f", inside (H, W) = {tuple(hw)}"
            V.fail(
                "params.boxes",
                f"boxes x1, y1, x2, y2 with 0 <= x1 <= x2 and 0 <= y1 <= y2{inside}",
                f"{b[i].tolist()} for sample {i}",
            )

    @property
    def batch_size(self) -> int:
        return int(self.perm.shape[0])

    @property
    def device(self) -> torch.device:
        return self.perm.device

    def to(self, device: torch.device | str) -> MixParams:
        """The same params on another device (``non_blocking`` copies)."""

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return MixParams(
            perm=move(self.perm),  # type: ignore[arg-type]
            lam=move(self.lam),  # type: ignore[arg-type]
            boxes=move(self.boxes),
            size=self.size,
            blend=move(self.blend),
        )

    def as_dict(self) -> dict[str, object]:
        """Plain Python values, for logging and JSON (this one synchronises with the device)."""
        return {
            "perm": self.perm.tolist(),
            "lam": self.lam.tolist(),
            "boxes": None if self.boxes is None else self.boxes.tolist(),
            "size": None if self.size is None else list(self.size),
            "blend": None if self.blend is None else self.blend.tolist(),
        }


def check_params(params: Any, images: Tensor, name: str = "params") -> MixParams:
    """``params`` is a :class:`MixParams` for this batch of ``images``: batch size, size, device."""
    if not isinstance(params, MixParams):
        V.fail(name, "a cutmix.MixParams", V.describe(params), kind=TypeError)
    n, (h, w) = images.shape[0], images.shape[-2:]
    if params.perm.shape[0] != n:
        V.fail(name, f"params for a batch of {n}", f"params for a batch of {params.perm.shape[0]}")
    if params.size is not None and tuple(params.size) != (h, w):
        V.fail(name, f"params for images of size {(h, w)}", f"params for size {tuple(params.size)}")
    if params.perm.device != images.device:
        V.fail(
            name, f"params on {images.device} (where the images are)", f"on {params.perm.device}"
        )
    return params


def _field(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        V.fail(f"params.{name}", "a torch.Tensor", V.describe(value), kind=TypeError)
    return value


def _resolve_device(
    device: torch.device | str | None, generator: torch.Generator | None
) -> torch.device:
    if device is None:
        V.check_generator(generator)
        return generator.device if generator is not None else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:  # "nonsense", 3.5, ...: torch's RuntimeError
        V.fail("device", "a torch.device or a device string like 'cpu'", V.describe(device),
               kind=TypeError if not isinstance(device, str) else ValueError)  # fmt: skip
        raise AssertionError from err  # unreachable: fail() raises
    V.check_generator_device(generator, device)
    return device


# Sampling speed (benchmarks/RESULTS.md, "sampling"): every call is a handful of small tensor ops, so
# the cost is per-op overhead, not arithmetic. All uniforms of a call come from ONE torch.rand call
# (one column per use), box arithmetic runs on (m, 2) x/y tensors in float64 (every value is a small
# exact integer, so floor/min/max are exact) and is converted to int64 once, and pair sharing copies
# the random inputs of the lower index before the boxes are computed (one gather, not one per output).
# Nothing reads a value back to the host and no shape depends on data: no sync on CUDA.

# Below this alpha a Gamma(alpha) draw loses its precision near 0 (torch._standard_gamma never
# returns 0 and rounds tiny draws up: at alpha = 1e-6, 99.9 % of ratios were < 0.5), so Beta draws
# are made from log-gammas instead; above it the plain ratio is exact enough and kept as it was.
_BETA_LOG_ALPHA = 0.1


@functools.lru_cache(maxsize=64)
def _cpu_consts(values: tuple[float, ...]) -> Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _consts(values: tuple[float, ...], device: torch.device) -> Tensor:
    """A small float64 constant on ``device`` without a host-to-device copy (a sync on CUDA).

    The CPU tensors are cached and shared: callers must never write to or return them.
    """
    if device.type == "cpu":
        return _cpu_consts(values)
    out = torch.empty(len(values), dtype=torch.float64, device=device)
    for i, v in enumerate(values):
        out[i] = v  # a device-side fill
    return out


def _uniform(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.rand(n, generator=generator, device=device, dtype=torch.float64)


def _beta64(
    alpha: float,
    m: int,
    u: Tensor | None,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """``m`` Beta(alpha, alpha) draws in float64.

    ``u`` is a column of ``m`` unused uniforms: the draw itself when ``alpha == 1`` (Beta(1, 1) is
    uniform), else one of the two uniforms of the log-space draws (tiny alpha).
    """
    if alpha == 1.0 and u is not None:
        return u
    if alpha >= _BETA_LOG_ALPHA:
        conc = torch.full((2, m), float(alpha), dtype=torch.float64, device=device)
        gam = torch._standard_gamma(conc, generator=generator)
        return gam[0].div_(gam.sum(0))
    # Gamma(a) = Gamma(a + 1) * U ** (1 / a), in logs: log G = log Gamma(a + 1) + log(U) / a. Both
    # logs are finite (U in (0, 1]), and λ = G1 / (G1 + G2) = sigmoid(log G1 - log G2) is exactly
    # symmetric in the two draws at every alpha > 0 (0 or 1 with equal chance as alpha -> 0).
    conc = torch.full((2, m), float(alpha) + 1.0, dtype=torch.float64, device=device)
    logs = torch._standard_gamma(conc, generator=generator).log_()
    v = _uniform(m, generator, device) if u is None else u
    w = _uniform(m, generator, device)
    logs[0].add_(torch.log1p(-v).div_(alpha))  # 1 - U for U in [0, 1): never log(0)
    logs[1].add_(torch.log1p(-w).div_(alpha))
    return torch.sigmoid(logs[0] - logs[1])


def sample_beta(
    alpha: float,
    n: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw ``n`` values of Beta(alpha, alpha) as float32, on ``device``, from ``generator``.

    Uses the ratio of two Gamma(alpha) draws (a uniform draw for ``alpha == 1``); below
    ``alpha = 0.1`` the ratio is taken in log space, so the draws stay symmetric about 1/2 at every
    ``alpha > 0`` (as ``alpha -> 0`` they become 0 or 1 with equal chance, the distribution's limit).

    Example:
        >>> lam = sample_beta(1.0, 3, generator=torch.Generator().manual_seed(0))
        >>> bool(((lam >= 0) & (lam <= 1)).all())
        True
    """
    V.check_alpha(alpha)
    dev = _resolve_device(device, generator)
    u = _uniform(n, generator, dev) if alpha == 1.0 else None
    return _beta64(alpha, n, u, generator, dev).to(torch.float32)


def sample_partners(
    n: int,
    *,
    mode: Mode = "sample",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    labels: Tensor | None = None,
    class_weights: ClassWeights = None,
) -> Tensor:
    """A partner for every sample: a derangement of ``range(n)`` (never itself when ``n >= 2``).

    ``"batch"`` and ``"sample"``: a random order ``s`` and ``perm[s[k]] = s[k + 1]`` (one cycle over a
    random order, so every partner other than itself is equally likely). ``"pair"``: an involution,
    ``perm[s[2k]] = s[2k+1]`` and back; with odd ``n`` the last one takes a random other partner.

    With ``class_weights`` (``"inverse_frequency"`` or one weight per class) and ``labels``, each
    sample independently draws a partner ``j != i`` with probability proportional to the weight of
    ``j``'s class (see :func:`partner_weights`): minority classes get pasted into the others more
    often. Partners may then repeat; modes ``"sample"`` and ``"batch"`` only.

    Example:
        >>> perm = sample_partners(5, generator=torch.Generator().manual_seed(0))
        >>> bool((perm != torch.arange(5)).all())
        True
    """
    V.check_batch_size(n)
    V.check_mode(mode)
    dev = _resolve_device(device, generator)
    return _partners(n, mode, generator, dev, labels, class_weights)


def _partners(
    n: int,
    mode: str,
    generator: torch.Generator | None,
    dev: torch.device,
    labels: Tensor | None,
    class_weights: ClassWeights,
) -> Tensor:
    """:func:`sample_partners` after validation."""
    if class_weights is not None:
        return _weighted_partners(n, mode, labels, class_weights, generator, dev)
    if n == 1:
        return torch.zeros(1, dtype=torch.int64, device=dev)
    order = torch.randperm(n, generator=generator, device=dev)
    perm = torch.empty_like(order)
    if mode != "pair":
        return perm.index_copy_(0, order, order.roll(-1))
    half = n // 2
    even, odd = order[0 : 2 * half : 2], order[1 : 2 * half : 2]
    perm.index_copy_(0, even, odd).index_copy_(0, odd, even)
    if n % 2:
        # The odd one out is mixed one way with a random other sample (uniform over n - 1 others).
        u = _uniform(1, generator, dev)
        k = (u * (n - 1)).floor_().clamp_max_(n - 2).to(torch.int64)
        perm[order[-1:]] = order[k]
    return perm


def identity_params(
    batch_size: int,
    size: tuple[int, int] | None,
    *,
    boxes: bool = True,
    device: torch.device | str | None = None,
) -> MixParams:
    """Params that leave every sample as it is (``lam = 1``, empty boxes, ``perm[i] = i``)."""
    V.check_batch_size(batch_size)
    dev = torch.device("cpu") if device is None else torch.device(device)
    return MixParams(
        perm=torch.arange(batch_size, device=dev),
        lam=torch.ones(batch_size, dtype=torch.float32, device=dev),
        boxes=torch.zeros(batch_size, 4, dtype=torch.int64, device=dev) if boxes else None,
        size=None if size is None else V.check_size(size),
    )


def _pair_source(perm: Tensor) -> Tensor:
    """Index whose draws each sample uses in pair mode: the lower index of a mutual pair, else its own."""
    idx = torch.arange(perm.shape[0], device=perm.device)
    return torch.where(perm[perm] == idx, torch.minimum(perm, idx), idx)


def _draws(
    alpha: float,
    m: int,
    cols: int,
    p: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Every random draw of a call but the partners: ``(lam0, u, keep)``.

    ``u`` holds ``cols`` uniform columns for the caller (shape ``(m, cols)``), ``lam0`` is Beta
    (float64, ``(m,)``) and ``keep`` says which samples are mixed (``None``: all, as ``p >= 1``).
    One ``torch.rand`` call draws them all.
    """
    want_keep = p < 1.0
    want_u_beta = alpha == 1.0 or alpha < _BETA_LOG_ALPHA
    total = cols + int(want_keep) + int(want_u_beta)
    u = torch.rand(m, total, generator=generator, device=device, dtype=torch.float64)
    lam0 = _beta64(alpha, m, u[:, -1] if want_u_beta else None, generator, device)
    keep = u[:, cols] < p if want_keep else None
    return lam0, u[:, :cols], keep


def sample_cutmix(
    batch_size: int,
    size: tuple[int, int],
    *,
    alpha: float = 1.0,
    p: float = 1.0,
    mode: Mode = "sample",
    placement: Placement = "center",
    area_bounds: tuple[float, float] | None = None,
    own_dominant: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    labels: Tensor | None = None,
    class_weights: ClassWeights = None,
) -> MixParams:
    """Draw CutMix params for a batch of ``batch_size`` images of ``size = (H, W)``.

    The cut fraction ``1 - λ`` is drawn from Beta(alpha, alpha) (rescaled into ``area_bounds``
    when given), the box sides are ``floor(sqrt(1 - λ) · W)`` by ``floor(sqrt(1 - λ) · H)``, and the
    box is placed by ``placement``:

    - ``"center"`` (the paper): a uniform centre pixel, the box clipped at the image edges;
    - ``"inside"``: a uniform top-left corner among those that keep the whole box inside.

    λ is then recomputed from the clipped integer box, ``λ = 1 - box_area / (H · W)``, so the label
    weights equal the pixel fractions exactly. ``own_dominant=True`` uses ``max(λ, 1 - λ)`` before the
    box is drawn (a sample always keeps at least half of itself). ``labels`` and ``class_weights``
    pick partners by class weight (see :func:`sample_partners`). Samples not mixed (probability
    ``1 - p``, per sample, or per batch in ``"batch"`` mode) get ``λ = 1`` and an empty box.

    ``area_bounds = (lo, hi)`` maps the Beta draw ``c`` to ``lo + (hi - lo) · c``: the target area
    fraction before edge clipping; use ``placement="inside"`` for boxes that are never clipped.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> p = sample_cutmix(8, (24, 32), alpha=1.0, mode="sample", generator=g)
        >>> area = (p.boxes[:, 2] - p.boxes[:, 0]) * (p.boxes[:, 3] - p.boxes[:, 1])
        >>> bool(torch.equal(p.lam, ((24 * 32 - area).double() / (24 * 32)).float()))
        True
    """
    V.check_batch_size(batch_size)
    h, w = V.check_size(size)
    V.check_alpha(alpha)
    V.check_probability(p)
    V.check_mode(mode)
    V.check_placement(placement)
    bounds = V.check_area_bounds(area_bounds)
    dev = _resolve_device(device, generator)
    return _cutmix(
        batch_size,
        (h, w),
        alpha,
        p,
        mode,
        placement,
        bounds,
        own_dominant,
        generator,
        dev,
        labels,
        class_weights,
    )


def _cutmix(
    n: int,
    size: tuple[int, int],
    alpha: float,
    p: float,
    mode: str,
    placement: str,
    bounds: tuple[float, float] | None,
    own_dominant: bool,
    generator: torch.Generator | None,
    dev: torch.device,
    labels: Tensor | None,
    class_weights: ClassWeights,
) -> MixParams:
    """:func:`sample_cutmix` after its checks (the transforms checked their settings once)."""
    h, w = size
    if n == 1:
        return identity_params(1, (h, w), device=dev)

    perm = _partners(n, mode, generator, dev, labels, class_weights)
    m = 1 if mode == "batch" else n
    # u columns: 0, 1 = x, y of the centre (or of the top-left corner for "inside").
    lam0, u, keep = _draws(alpha, m, 2, p, generator, dev)
    if mode == "pair":
        # Both members of a mutual pair use the draws of the lower index: same λ, box and decision.
        src = _pair_source(perm)
        lam0, u = lam0[src], u[src]
        keep = None if keep is None else keep[src]
    if own_dominant:
        lam0 = torch.maximum(lam0, torch.rsub(lam0, 1.0))
    cut = torch.rsub(lam0, 1.0)
    if bounds is not None:
        cut = bounds[0] + (bounds[1] - bounds[0]) * cut
    ratio = cut.clamp_(0.0, 1.0).sqrt_()
    wh, wh1 = _consts((w, h), dev), _consts((w - 1, h - 1), dev)
    # (m, 2) box sides (width, height), float64 holding exact integers: floor(sqrt(cut) * W) as
    # timm, with no epsilon (one made every cut within ~1e-9 / W of 1 a full-image box). ratio <= 1,
    # so the floor is in [0, W], and ratio = 1 gives W exactly.
    sides = (ratio[:, None] * wh).floor_()
    if placement == "center":
        # x1 = cx - cut_w // 2 is always < W and x2 = x1 + cut_w always >= 0: clip one side each.
        lo = torch.minimum((u * wh).floor_(), wh1).sub_((sides * 0.5).floor_())
        hi = torch.minimum(lo + sides, wh)
        ext = hi - lo.clamp_min_(0.0)
    else:
        bound = (sides - wh).neg_().add_(1.0)  # W - cut_w + 1 top-left positions
        lo = torch.minimum((u * bound).floor_(), bound - 1.0)
        hi, ext = lo + sides, sides
    boxes = torch.cat([lo, hi], dim=1)
    area = ext.prod(1)
    if keep is not None:
        boxes.mul_(keep[:, None])
        area.mul_(keep)
    # Exact in float64 (the same value as from the int64 box), rounded once to float32.
    lam = area.neg_().add_(h * w).div_(h * w).to(torch.float32)
    if m == 1:
        boxes, lam = boxes.expand(n, 4), lam.expand(n)
    fmt = torch.contiguous_format
    return MixParams(
        perm=perm,
        lam=lam.clone(memory_format=fmt) if m == 1 else lam,
        boxes=boxes.to(torch.int64, memory_format=fmt),
        size=(h, w),
    )


def sample_mixup(
    batch_size: int,
    size: tuple[int, int] | None = None,
    *,
    alpha: float = 0.2,
    p: float = 1.0,
    mode: Mode = "sample",
    own_dominant: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    labels: Tensor | None = None,
    class_weights: ClassWeights = None,
) -> MixParams:
    """Draw MixUp params: ``λ ~ Beta(alpha, alpha)`` per sample, pair or batch; no box.

    ``size`` is recorded (when given) so that the params are checked against the images they are
    applied to. Unmixed samples (probability ``1 - p``) get ``λ = 1``.

    Example:
        >>> p = sample_mixup(4, alpha=0.4, generator=torch.Generator().manual_seed(0))
        >>> p.boxes is None and p.lam.shape == (4,)
        True
    """
    V.check_batch_size(batch_size)
    hw = None if size is None else V.check_size(size)
    V.check_alpha(alpha)
    V.check_probability(p)
    V.check_mode(mode)
    dev = _resolve_device(device, generator)
    return _mixup(
        batch_size, hw, alpha, p, mode, own_dominant, generator, dev, labels, class_weights
    )


def _mixup(
    n: int,
    hw: tuple[int, int] | None,
    alpha: float,
    p: float,
    mode: str,
    own_dominant: bool,
    generator: torch.Generator | None,
    dev: torch.device,
    labels: Tensor | None,
    class_weights: ClassWeights,
) -> MixParams:
    """:func:`sample_mixup` after its checks."""
    if n == 1:
        return identity_params(1, hw, boxes=False, device=dev)
    perm = _partners(n, mode, generator, dev, labels, class_weights)
    m = 1 if mode == "batch" else n
    lam0, _, keep = _draws(alpha, m, 0, p, generator, dev)
    lam = lam0.to(torch.float32)
    if own_dominant:
        lam = torch.maximum(lam, 1.0 - lam)
    if keep is not None:
        lam = torch.where(keep, lam, 1.0)
    if mode == "pair":
        lam = lam[_pair_source(perm)]
    elif m == 1:
        lam = lam.expand(n).clone()
    return MixParams(perm=perm, lam=lam, boxes=None, size=hw)
