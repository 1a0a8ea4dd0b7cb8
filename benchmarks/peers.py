"""The peers the benchmarks compare with, each as ``fn(images, labels)``; only those installed.

torchvision v2 ``CutMix``, timm ``Mixup`` in per-batch (``mode="batch"``) and per-sample
(``mode="elem"``) mode, kornia ``RandomCutMixV2``. timm mixes in place on the caller's tensor.
All do their own sampling and soft targets: they are compared with the full ``CutMix()`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Peer = Callable[[torch.Tensor, torch.Tensor], Any]

TORCHVISION = "torchvision v2 CutMix"
TIMM_BATCH = "timm Mixup batch (in place)"
TIMM_ELEM = "timm Mixup elem (in place)"
KORNIA = "kornia RandomCutMixV2"


def peers(num_classes: int, names: tuple[str, ...] | None = None) -> dict[str, Peer]:
    """The installed peers (all, or those in ``names``), by display name."""
    out: dict[str, Peer] = {}
    want = (lambda name: True) if names is None else (lambda name: name in names)
    if want(TORCHVISION):
        try:
            from torchvision.transforms import v2

            tv = v2.CutMix(alpha=1.0, num_classes=num_classes)
            out[TORCHVISION] = lambda x, y: tv(x, y)
        except Exception:  # an optional peer
            pass
    for name, mode in ((TIMM_BATCH, "batch"), (TIMM_ELEM, "elem")):
        if want(name):
            try:
                from timm.data import Mixup

                out[name] = Mixup(
                    mixup_alpha=0.0,
                    cutmix_alpha=1.0,
                    mode=mode,
                    label_smoothing=0.0,
                    num_classes=num_classes,
                )
            except Exception:  # an optional peer
                pass
    if want(KORNIA):
        try:
            import kornia.augmentation as K

            k = K.RandomCutMixV2(data_keys=["input", "class"], use_correct_lambda=True)
            out[KORNIA] = lambda x, y: k(x, y)
        except Exception:  # an optional peer
            pass
    return out


def peer_case(fn: Peer, x: torch.Tensor, y: torch.Tensor) -> Callable[[], Any] | str:
    """A timed callable, or the reason the peer cannot run this input."""
    try:
        fn(x, y)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
    return lambda: fn(x, y)
