"""``cutmix evaluate RUN --data FOLDER --split all``: score every image of a separate test folder.

The folder's class folders are matched **by name** to the checkpoint's class names (not by count or
position): a folder ``root/cat/`` is scored as the checkpoint's class ``cat`` whatever its place in
the listing. A class folder the checkpoint does not know is an error; a checkpoint class with no
folder is reported as missing (its accuracy is ``None``; balanced accuracy averages the classes
present).

Example:
    >>> match_classes(["b", "a"], ["a", "b", "c"])
    ([1, 0], ['c'])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cutmix.train.data import _list_folder, _load_folder
from cutmix.train.errors import UsageError
from cutmix.train.loop import Dist, evaluate_model, load_weights, pick_device
from cutmix.train.metrics import balanced_accuracy
from cutmix.train.models import build_model, parse_model_kwargs

__all__ = ["evaluate_all", "match_classes"]


def match_classes(folder: Sequence[str], known: Sequence[str]) -> tuple[list[int], list[str]]:
    """Map every folder class to the checkpoint's class id by name; also return the missing ones.

    Raises :class:`UsageError` naming the unknown folder classes.
    """
    index = {c: i for i, c in enumerate(known)}
    unknown = [c for c in folder if c not in index]
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise UsageError(
            f"data: expected class folders named like the checkpoint's classes "
            f"({', '.join(known[:20])}{' ...' if len(known) > 20 else ''}), got unknown {shown}"
        )
    present = set(folder)
    return [index[c] for c in folder], [c for c in known if c not in present]


def evaluate_all(
    state: dict[str, Any], data: str, *, batch_size: int = 500, use_cache: bool = True
) -> dict[str, Any]:
    """Top-1, top-5, balanced and per-class accuracy of a loaded checkpoint on every image of
    the image folder ``data``."""

    root = Path(data).expanduser()
    if not root.is_dir():
        raise UsageError(
            f"data: expected an image folder (root/<class>/<image>) for --split all, got {data!r}"
        )
    size, cin, known = int(state["image_size"]), int(state["in_channels"]), list(state["classes"])
    match_classes(_list_folder(root, None)[0], known)  # unknown names fail before any decoding
    d, _, folder_classes, _info = _load_folder(root, size, None, use_cache, _warn)
    mapping, missing = match_classes(folder_classes, known)
    if cin != d.x.shape[1]:
        raise UsageError(
            f"data: expected {cin}-channel images (as the checkpoint), got {d.x.shape[1]}-channel "
            f"images from {root}"
        )
    d.y = torch.as_tensor(np.asarray(mapping, dtype=np.int64))[d.y]
    cfg = state.get("config", {})
    name = state["model_name"]
    net = build_model(name, len(known), cin, size, parse_model_kwargs(cfg.get("model_kwargs")))
    load_weights(net, state["model"], "the checkpoint")
    device = pick_device("auto", Dist())
    net = net.to(device)
    mean = torch.tensor(state["mean"], device=device).view(1, cin, 1, 1)
    std = torch.tensor(state["std"], device=device).view(1, cin, 1, 1)
    ev = evaluate_model(net, d, mean, std, len(known), device, batch_size=batch_size)
    per_class = [a if n > 0 else None for a, n in zip(ev["per_class"], ev["class_count"])]
    return {
        "model": name,
        "data": str(root),
        "split": "all",
        "epoch": state["epoch"],
        "count": ev["count"],
        "top1": ev["acc"],
        "top5": ev["top5"],
        "loss": ev["loss"],
        "balanced_acc": balanced_accuracy(per_class, ev["class_count"]),
        "classes": known,
        "per_class": per_class,
        "class_count": ev["class_count"],
        "missing": missing,
    }


def _warn(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr, flush=True)
