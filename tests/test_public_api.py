"""The public API stays: every name of main (7666af3) still imports, and every call still binds.

``API_ON_MAIN`` was recorded by importing main's code: the names in ``__all__`` of the public
modules (which cover README.md and DESIGN.md) and the classes' public methods, each signature in
Python's own notation without annotations (a bare ``"*"`` before keyword-only parameters, ``"/"``
after positional-only ones). A signature may grow (a new keyword-only argument with a default, say),
but every call that worked on main must bind to the same parameters with the same defaults.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, NamedTuple

import pytest

API_ON_MAIN: dict[str, Any] = {
    "cutmix.CutMix": [
        "alpha=1.0",
        "num_classes=None",
        "*",
        "p=1.0",
        "mode='sample'",
        "placement='center'",
        "area_bounds=None",
        "own_dominant=False",
        "label_smoothing=0.0",
        "enabled=True",
        "inplace=False",
        "partner_weights=None",
        "strategy='auto'",
    ],
    "cutmix.CutMix.__call__": ["images", "labels", "generator=None"],
    "cutmix.CutMix.apply": ["images", "labels", "params"],
    "cutmix.CutMix.sample": ["images", "generator=None", "*", "labels=None"],
    "cutmix.DenseMix": ["mix", "*", "min_visibility=0.25", "min_area=1.0"],
    "cutmix.DenseMix.__call__": ["images", "targets", "generator=None"],
    "cutmix.MixCollate": [
        "mix",
        "collate_fn=<function torch.utils.data._utils.collate.default_collate>",
        "*",
        "seed=None",
    ],
    "cutmix.MixCollate.__call__": ["samples"],
    "cutmix.MixParams": ["perm", "lam", "boxes", "size", "blend=None"],
    "cutmix.MixParams.as_dict": [],
    "cutmix.MixParams.batch_size": "property",
    "cutmix.MixParams.device": "property",
    "cutmix.MixParams.to": ["device"],
    "cutmix.MixUp": [
        "alpha=0.2",
        "num_classes=None",
        "*",
        "p=1.0",
        "mode='sample'",
        "own_dominant=False",
        "label_smoothing=0.0",
        "enabled=True",
        "inplace=False",
        "partner_weights=None",
    ],
    "cutmix.MixUp.__call__": ["images", "labels", "generator=None"],
    "cutmix.MixUp.apply": ["images", "labels", "params"],
    "cutmix.MixUp.sample": ["images", "generator=None", "*", "labels=None"],
    "cutmix.RandomMix": [
        "transforms",
        "p=None",
        "num_classes=None",
        "*",
        "choose='batch'",
        "label_smoothing=0.0",
        "enabled=True",
        "inplace=False",
    ],
    "cutmix.RandomMix.__call__": ["images", "labels", "generator=None"],
    "cutmix.RandomMix.apply": ["images", "labels", "params"],
    "cutmix.RandomMix.sample": ["images", "generator=None", "*", "labels=None"],
    "cutmix.__version__": "value",
    "cutmix.class_weights_from_counts": ["counts", "*", "power=1.0"],
    "cutmix.collate.MixCollate": [
        "mix",
        "collate_fn=<function torch.utils.data._utils.collate.default_collate>",
        "*",
        "seed=None",
    ],
    "cutmix.collate.MixCollate.__call__": ["samples"],
    "cutmix.cut_boxes": [
        "boxes",
        "labels",
        "params",
        "*",
        "min_visibility=0.25",
        "min_area=1.0",
        "return_weights=False",
    ],
    "cutmix.cut_masks": ["masks", "params"],
    "cutmix.dense": "module",
    "cutmix.dense.BOX_KEYS": "value",
    "cutmix.dense.DenseMix": ["mix", "*", "min_visibility=0.25", "min_area=1.0"],
    "cutmix.dense.DenseMix.__call__": ["images", "targets", "generator=None"],
    "cutmix.dense.MaskMix": ["masks", "partner", "lam"],
    "cutmix.dense.MixedBoxes": ["boxes", "labels", "weights"],
    "cutmix.dense.cut_boxes": [
        "boxes",
        "labels",
        "params",
        "*",
        "min_visibility=0.25",
        "min_area=1.0",
        "return_weights=False",
    ],
    "cutmix.dense.cut_masks": ["masks", "params"],
    "cutmix.dense.mix_batch": [
        "images",
        "targets",
        "params",
        "*",
        "min_visibility=0.25",
        "min_area=1.0",
        "box_keys=('labels', 'iscrowd', 'area')",
    ],
    "cutmix.dense.mix_masks": ["masks", "params"],
    "cutmix.dense.mixed_mask_cross_entropy": [
        "logits",
        "mixed",
        "*",
        "ignore_index=-100",
        "label_smoothing=0.0",
        "reduction='mean'",
    ],
    "cutmix.functional": "module",
    "cutmix.functional.OPT_IN_STRATEGIES": "value",
    "cutmix.functional.STRATEGIES": "value",
    "cutmix.functional.apply_images": [
        "images",
        "params",
        "*",
        "inplace=False",
        "out=None",
        "strategy='auto'",
    ],
    "cutmix.functional.box_mask": ["boxes", "size"],
    "cutmix.functional.cut_boxes": [
        "boxes",
        "labels",
        "params",
        "*",
        "min_visibility=0.25",
        "min_area=1.0",
        "return_weights=False",
    ],
    "cutmix.functional.cut_images": [
        "images",
        "params",
        "*",
        "inplace=False",
        "out=None",
        "strategy='auto'",
    ],
    "cutmix.functional.cut_masks": ["masks", "params"],
    "cutmix.functional.mix_images": ["images", "params", "*", "inplace=False", "out=None"],
    "cutmix.functional.mix_labels": [
        "labels",
        "params",
        "num_classes=None",
        "*",
        "label_smoothing=0.0",
        "out=None",
    ],
    "cutmix.functional.one_hot": ["labels", "num_classes", "*", "label_smoothing=0.0"],
    "cutmix.identity_params": ["batch_size", "size", "*", "boxes=True", "device=None"],
    "cutmix.interop.torchvision.AXIS_ALIGNED": "value",
    "cutmix.interop.torchvision.boxes_from_xyxy": ["boxes", "metas"],
    "cutmix.interop.torchvision.boxes_to_xyxy": ["boxes"],
    "cutmix.interop.torchvision.wrap_like": ["tensor", "like"],
    "cutmix.losses.mixed_binary_cross_entropy": [
        "logits",
        "labels",
        "params",
        "*",
        "reduction='mean'",
    ],
    "cutmix.losses.mixed_cross_entropy": [
        "logits",
        "labels",
        "params",
        "*",
        "label_smoothing=0.0",
        "ignore_index=-100",
        "reduction='mean'",
    ],
    "cutmix.losses.soft_target_cross_entropy": ["logits", "targets", "*", "reduction='mean'"],
    "cutmix.mix_batch": [
        "images",
        "targets",
        "params",
        "*",
        "min_visibility=0.25",
        "min_area=1.0",
        "box_keys=('labels', 'iscrowd', 'area')",
    ],
    "cutmix.mix_masks": ["masks", "params"],
    "cutmix.mixed_binary_cross_entropy": ["logits", "labels", "params", "*", "reduction='mean'"],
    "cutmix.mixed_cross_entropy": [
        "logits",
        "labels",
        "params",
        "*",
        "label_smoothing=0.0",
        "ignore_index=-100",
        "reduction='mean'",
    ],
    "cutmix.params.MODES": "value",
    "cutmix.params.MixParams": ["perm", "lam", "boxes", "size", "blend=None"],
    "cutmix.params.MixParams.as_dict": [],
    "cutmix.params.MixParams.batch_size": "property",
    "cutmix.params.MixParams.device": "property",
    "cutmix.params.MixParams.to": ["device"],
    "cutmix.params.PLACEMENTS": "value",
    "cutmix.params.class_weights_from_counts": ["counts", "*", "power=1.0"],
    "cutmix.params.identity_params": ["batch_size", "size", "*", "boxes=True", "device=None"],
    "cutmix.params.partner_weights": ["labels", "class_weights='inverse_frequency'"],
    "cutmix.params.sample_beta": ["alpha", "n", "*", "generator=None", "device=None"],
    "cutmix.params.sample_cutmix": [
        "batch_size",
        "size",
        "*",
        "alpha=1.0",
        "p=1.0",
        "mode='sample'",
        "placement='center'",
        "area_bounds=None",
        "own_dominant=False",
        "generator=None",
        "device=None",
        "labels=None",
        "class_weights=None",
    ],
    "cutmix.params.sample_mixup": [
        "batch_size",
        "size=None",
        "*",
        "alpha=0.2",
        "p=1.0",
        "mode='sample'",
        "own_dominant=False",
        "generator=None",
        "device=None",
        "labels=None",
        "class_weights=None",
    ],
    "cutmix.params.sample_partners": [
        "n",
        "*",
        "mode='sample'",
        "generator=None",
        "device=None",
        "labels=None",
        "class_weights=None",
    ],
    "cutmix.partner_weights": ["labels", "class_weights='inverse_frequency'"],
    "cutmix.preview.class_color": ["k"],
    "cutmix.preview.grid_size": ["n", "h", "w", "*", "cols=8", "scale=4"],
    "cutmix.preview.render_grid": [
        "images",
        "labels",
        "params",
        "*",
        "classes=None",
        "cols=8",
        "scale=4",
        "masks=None",
        "target_boxes=None",
        "target_labels=None",
        "mask_alpha=0.45",
        "mask_skip=(0, 255)",
    ],
    "cutmix.sample_cutmix": [
        "batch_size",
        "size",
        "*",
        "alpha=1.0",
        "p=1.0",
        "mode='sample'",
        "placement='center'",
        "area_bounds=None",
        "own_dominant=False",
        "generator=None",
        "device=None",
        "labels=None",
        "class_weights=None",
    ],
    "cutmix.sample_mixup": [
        "batch_size",
        "size=None",
        "*",
        "alpha=0.2",
        "p=1.0",
        "mode='sample'",
        "own_dominant=False",
        "generator=None",
        "device=None",
        "labels=None",
        "class_weights=None",
    ],
    "cutmix.sample_partners": [
        "n",
        "*",
        "mode='sample'",
        "generator=None",
        "device=None",
        "labels=None",
        "class_weights=None",
    ],
    "cutmix.soft_target_cross_entropy": ["logits", "targets", "*", "reduction='mean'"],
    "cutmix.transforms.CutMix": [
        "alpha=1.0",
        "num_classes=None",
        "*",
        "p=1.0",
        "mode='sample'",
        "placement='center'",
        "area_bounds=None",
        "own_dominant=False",
        "label_smoothing=0.0",
        "enabled=True",
        "inplace=False",
        "partner_weights=None",
        "strategy='auto'",
    ],
    "cutmix.transforms.CutMix.__call__": ["images", "labels", "generator=None"],
    "cutmix.transforms.CutMix.apply": ["images", "labels", "params"],
    "cutmix.transforms.CutMix.sample": ["images", "generator=None", "*", "labels=None"],
    "cutmix.transforms.MixUp": [
        "alpha=0.2",
        "num_classes=None",
        "*",
        "p=1.0",
        "mode='sample'",
        "own_dominant=False",
        "label_smoothing=0.0",
        "enabled=True",
        "inplace=False",
        "partner_weights=None",
    ],
    "cutmix.transforms.MixUp.__call__": ["images", "labels", "generator=None"],
    "cutmix.transforms.MixUp.apply": ["images", "labels", "params"],
    "cutmix.transforms.MixUp.sample": ["images", "generator=None", "*", "labels=None"],
    "cutmix.transforms.RandomMix": [
        "transforms",
        "p=None",
        "num_classes=None",
        "*",
        "choose='batch'",
        "label_smoothing=0.0",
        "enabled=True",
        "inplace=False",
    ],
    "cutmix.transforms.RandomMix.__call__": ["images", "labels", "generator=None"],
    "cutmix.transforms.RandomMix.apply": ["images", "labels", "params"],
    "cutmix.transforms.RandomMix.sample": ["images", "generator=None", "*", "labels=None"],
}


def _default(value: Any) -> str:
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return f"<function {value.__module__}.{value.__qualname__}>"
    return repr(value)


def signature(obj: Any) -> list[str]:
    """``obj``'s parameters in the notation of ``API_ON_MAIN``."""
    out = []
    params = [p for p in inspect.signature(obj).parameters.values() if p.name != "self"]
    kinds = inspect.Parameter
    for i, p in enumerate(params):
        before = params[i - 1].kind if i else None
        if p.kind == kinds.KEYWORD_ONLY and before not in (
            kinds.KEYWORD_ONLY,
            kinds.VAR_POSITIONAL,
        ):
            out.append("*")
        s = {kinds.VAR_POSITIONAL: "*", kinds.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.default is not p.empty:
            s += "=" + _default(p.default)
        out.append(s)
        after = params[i + 1].kind if i + 1 < len(params) else None
        if p.kind == kinds.POSITIONAL_ONLY and after != kinds.POSITIONAL_ONLY:
            out.append("/")
    return out


class Param(NamedTuple):
    kind: str  # "posonly", "pos" (positional or keyword), "kw" (keyword-only), "args", "kwargs"
    name: str
    default: str | None


def parse(params: list[str]) -> list[Param]:
    out: list[Param] = []
    keyword_only = False
    for text in params:
        if text == "/":
            out = [q._replace(kind="posonly") for q in out]
            continue
        if text == "*":
            keyword_only = True
            continue
        head, eq, default = text.partition("=")
        if head.startswith("**"):
            out.append(Param("kwargs", head[2:], None))
        elif head.startswith("*"):
            out.append(Param("args", head[1:], None))
            keyword_only = True
        else:
            out.append(Param("kw" if keyword_only else "pos", head, default if eq else None))
    return out


def incompatibilities(old: list[str], new: list[str]) -> list[str]:
    """Why a call that binds to ``old`` may bind differently to ``new`` (empty: compatible)."""
    o, n = parse(old), parse(new)
    problems = []
    old_pos = [p.name for p in o if p.kind in ("posonly", "pos")]
    new_pos = [p.name for p in n if p.kind in ("posonly", "pos")]
    if new_pos[: len(old_pos)] != old_pos:
        problems.append(f"positional parameters {old_pos} -> {new_pos}")
    new_by_name = {p.name: p for p in n}
    for p in o:
        if p.kind in ("args", "kwargs"):
            if not any(q.kind == p.kind for q in n):
                problems.append(f"{p.kind} {p.name} removed")
            continue
        q = new_by_name.get(p.name)
        if q is None:
            problems.append(f"{p.name} removed")
        elif p.kind in ("pos", "kw") and q.kind not in ("pos", "kw"):
            problems.append(f"{p.name} can no longer be passed by keyword")
        elif p.default is not None and q.default != p.default:
            problems.append(f"{p.name}: default {p.default} -> {q.default}")
    old_names = {p.name for p in o}
    for q in n:
        if q.name not in old_names and q.kind in ("posonly", "pos", "kw") and q.default is None:
            problems.append(f"new required parameter {q.name}")
    return problems


def _resolve(qualname: str) -> Any:
    parts = qualname.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = inspect.getattr_static(obj, attr)
        return obj
    raise ImportError(qualname)


@pytest.mark.parametrize("qualname", sorted(API_ON_MAIN))
def test_public_name_still_importable_with_a_compatible_signature(qualname: str) -> None:
    recorded = API_ON_MAIN[qualname]
    obj = _resolve(qualname)
    if recorded == "module":
        assert inspect.ismodule(obj)
    elif recorded == "property":
        assert isinstance(obj, property)
    elif recorded != "value":
        assert incompatibilities(recorded, signature(obj)) == []


def test_the_compatibility_check_catches_breaks() -> None:
    old = ["images", "params", "*", "inplace=False", "**kwargs"]
    assert incompatibilities(old, old) == []
    assert incompatibilities(old, [*old[:-1], "strategy='auto'", "**kwargs"]) == []  # grew
    assert incompatibilities(old, ["images", "params", "inplace=False", "**kwargs"]) == []
    assert incompatibilities(old, ["params", "images", "*", "inplace=False", "**kwargs"])
    assert incompatibilities(old, ["images", "params", "*", "inplace=True", "**kwargs"])
    assert incompatibilities(old, ["images", "params", "*", "**kwargs"])  # inplace removed
    assert incompatibilities(old, ["images", "params", "*", "inplace=False"])  # **kwargs removed
    assert incompatibilities(old, [*old[:-1], "labels", "**kwargs"])  # a new required argument
    assert incompatibilities(old, ["images", "/", "params", "*", "inplace=False", "**kwargs"])
    assert signature(lambda a, /, b, *c, d=1, **e: None) == ["a", "/", "b", "*c", "d=1", "**e"]
    assert signature(lambda a, *, b: None) == ["a", "*", "b"]


def test_old_module_paths_still_import() -> None:
    """The mask and box kernels moved into cutmix.functional; cutmix.dense.masks/boxes still work."""
    from cutmix.dense.boxes import cut_boxes
    from cutmix.dense.masks import cut_masks

    import cutmix

    assert cut_masks is cutmix.functional.cut_masks is cutmix.dense.cut_masks
    assert cut_boxes is cutmix.functional.cut_boxes is cutmix.dense.cut_boxes
