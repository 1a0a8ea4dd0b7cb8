"""The issues' speed goals, evaluated on measured rows (a goal whose cases are missing is skipped).

:func:`load_goals` are issue 10's (item 4), for a quiet and a loaded run alike: at every image
shape ``"auto"`` within 1.5x of the best kernel, the full ``CutMix()`` call faster than timm's
per-sample ``Mixup`` (``mode="elem"``) and torchvision v2 ``CutMix``, and at f32 128x3x224² the
full call against a ``clone()`` and in place against a ``copy_`` timed in the same rounds (loaded
≤ 2.5x and ≤ 4x, quiet ≤ 1.3x and ≤ 1.2x; meant for 2 intra-op threads). The same goals are
evaluated for ``"auto"`` without the C kernel (``[auto without native]`` rows). :func:`goals`
are issue 5's, for the full quiet run.
"""

from __future__ import annotations

from typing import Any

from benchmarks.peers import TIMM_ELEM, TORCHVISION
from benchmarks.suite import EAGER
from cutmix.bench import Row, paired_ratio

BIG = "float32 128x3x224x224"
FULL = "CutMix() sample (+sample, targets)"
KERNELS = ("loop", "masked", "native")


def _goal(what: str, measured: float, target: float, strict: bool = False) -> dict[str, Any]:
    met = measured < target if strict else measured <= target
    return {"goal": what, "measured": measured, "target": target, "met": met}


def load_goals(rows: list[Row], loaded: bool) -> list[dict[str, Any]]:
    """Issue 10's goals on the ``images`` rows of one run (quiet or loaded)."""
    out: list[dict[str, Any]] = []
    for shape in dict.fromkeys(r.shape for r in rows if r.section == "images"):
        by = {r.case: r for r in rows if r.section == "images" and r.shape == shape and r.n}
        for how, auto in (
            ("out of place", "cut_images sample"),
            ("in place", "cut_images sample inplace"),
        ):
            forced = [by[f"{auto} [{k}]"] for k in KERNELS if f"{auto} [{k}]" in by]
            if auto in by and forced:
                best = min(forced, key=lambda r: r.median_ms)
                out.append(
                    _goal(
                        f"{shape} {how}: auto ÷ best kernel ({best.case.rsplit('[', 1)[1][:-1]})",
                        by[auto].median_ms / best.median_ms,
                        1.5,
                    )
                )
        for variant in ("", f" {EAGER}"):
            full = by.get(FULL + variant)
            for peer in (TIMM_ELEM, TORCHVISION):
                if full is not None and peer in by:
                    out.append(
                        _goal(
                            f"{shape} full call{variant} ÷ {peer}",
                            paired_ratio(full, by[peer]),
                            1.0,
                            True,
                        )
                    )
            if shape != BIG:
                continue
            inplace = by.get("cut_images sample inplace" + variant)
            limits = (2.5, 4.0) if loaded else (1.3, 1.2)
            if full is not None and "clone()" in by:
                out.append(
                    _goal(
                        f"{shape} full call{variant} ×clone",
                        paired_ratio(full, by["clone()"]),
                        limits[0],
                    )
                )
            if inplace is not None and "copy_" in by:
                out.append(
                    _goal(
                        f"{shape} in place{variant} ×copy",
                        paired_ratio(inplace, by["copy_"]),
                        limits[1],
                    )
                )
    return out


def _find(rows: list[Row], section: str, shape: str, case: str) -> Row | None:
    return next(
        (r for r in rows if r.section == section and r.shape.startswith(shape) and r.case == case),
        None,
    )


def goals(rows: list[Row]) -> list[dict[str, Any]]:
    """The issue's goal table evaluated on the measured rows (missing cases are skipped)."""
    big, small, u8 = "float32 128x3x224x224", "float32 256x3x32x32", "uint8 128x3x224x224"
    spec = [
        ("out of place, f32 128x3x224², ×clone", big, "cut_images sample", "clone", 1.1),
        ("out= buffer, f32 128x3x224², ×copy", big, "cut_images sample out=", "copy", 1.3),
        ("inplace, f32 128x3x224², ×copy", big, "cut_images sample inplace", "copy", 1.2),
        ("out of place, f32 256x3x32², ×copy", small, "cut_images sample", "copy", 2.5),
        ("out of place, uint8 128x3x224², ×copy", u8, "cut_images sample", "copy", 1.5),
    ]
    out: list[dict[str, Any]] = []
    for variant, suffix in (("", ""), (f" {EAGER}", " (without the C kernel)")):
        for what, shape, case, ref, goal in spec:
            name = case + variant
            r = _find(rows, "images", shape, name)
            if r is not None and ref in r.ratios:
                val = r.ratios[ref]
                out.append(
                    {"goal": what + suffix, "measured": val, "target": goal, "met": val <= goal}
                )
    for shape, when in (
        ("N=128 C=21843", "alternated"),
        ("N=128 C=21843, 5 calls back to back", "back to back"),
    ):
        section = [r for r in rows if r.section == "targets" and r.shape == shape]
        by = {r.case: r for r in section}
        for case in ("mix_labels", "mix_labels out="):
            if case in by:
                ms = by[case].median_ms
                out.append(
                    {
                        "goal": f"soft targets {shape.split(',')[0]} {when}: {case}, ms",
                        "measured": ms,
                        "target": 1.0,
                        "met": ms <= 1.0,
                    }
                )
        if "mix_labels" in by and "timm mixup_target" in by:
            val = paired_ratio(by["mix_labels"], by["timm mixup_target"])
            out.append(
                {
                    "goal": f"soft targets {when}: mix_labels ×timm",
                    "measured": val,
                    "target": 0.25,
                    "met": val <= 0.25,
                }
            )
    r = _find(rows, "train", "", "step with CutMix")
    if r is not None:
        val = r.ratios["without"]
        out.append(
            {
                "goal": "SGD step with/without CutMix (paired rounds)",
                "measured": val,
                "target": 1.03,
                "met": val <= 1.03,
            }
        )
        alone = _find(rows, "train", "", "CutMix call alone")
        if alone is not None:
            val = 1.0 + alone.ratios["without"]
            out.append(
                {
                    "goal": "SGD step with/without CutMix (1 + CutMix call / step)",
                    "measured": val,
                    "target": 1.03,
                    "met": val <= 1.03,
                }
            )
    for shape in sorted({r.shape for r in rows if r.section == "images"}):
        section = [r for r in rows if r.section == "images" and r.shape == shape]
        peers = [r for r in section if r.kind == "peer" and r.n]
        if not peers:
            continue
        fastest = min(peers, key=lambda r: r.median_ms)
        for r in section:
            ours = r.case.startswith(("cut_images sample", "CutMix() sample"))
            if ours and ("[" not in r.case or EAGER in r.case):
                val = r.ratios.get("peer", r.median_ms / fastest.median_ms)
                out.append(
                    {
                        "goal": f"{shape} {r.case} < fastest peer ({fastest.case})",
                        "measured": val,
                        "target": 1.0,
                        "met": val < 1.0,
                    }
                )
    return out
