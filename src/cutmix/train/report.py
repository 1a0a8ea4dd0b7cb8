"""``cutmix compare`` (runs, statistics, report folder) and ``cutmix evaluate``.

The report folder holds ``report.md`` (the table, the differences, how to reproduce), ``summary.json``
(every number), ``curves.png`` (validation accuracy and training loss per epoch, mean ± sd over
seeds), ``preview.png`` (what the mixed batches look like), ``reproduce.sh`` and one run folder per
arm and seed (``runs/<arm>-seed<k>/``: metrics.jsonl, summary.json, last.pt).

Example:
    >>> s = welch([0.90, 0.91, 0.92], [0.93, 0.94, 0.95])
    >>> round(s["diff"], 4), s["p_value"] < 0.05
    (0.03, True)
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from cutmix.train.checks import check_checkpoint
from cutmix.train.config import MIX_CHOICES, TrainConfig, check_out_outside_data
from cutmix.train.errors import UsageError
from cutmix.train.evaluate_all import evaluate_all
from cutmix.train.imbalance import parse_arm
from cutmix.train.lock import RunLock
from cutmix.train.loop import (
    Dist,
    evaluate_model,
    load_checkpoint,
    load_splits,
    load_weights,
    pick_device,
    train,
)
from cutmix.train.metrics import balanced_accuracy, is_imbalanced, json_safe
from cutmix.train.models import build_model, parse_model_kwargs
from cutmix.train.preview_cmd import preview_from_splits

__all__ = ["evaluate_checkpoint", "run_compare", "summarize", "welch"]

ARM_NAMES = {"none": "baseline", "cutmix": "CutMix", "mixup": "MixUp", "randommix": "CutMix|MixUp"}


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def _t_ppf(q: float, df: float) -> float:
    try:
        from scipy import stats

        return float(stats.t.ppf(q, df))
    except ImportError:  # normal approximation
        from statistics import NormalDist

        return NormalDist().inv_cdf(q)


def _t_sf(t: float, df: float) -> float:
    try:
        from scipy import stats

        return float(stats.t.sf(t, df))
    except ImportError:
        from statistics import NormalDist

        return 1.0 - NormalDist().cdf(t)


def welch(a: list[float], b: list[float], level: float = 0.95) -> dict[str, float]:
    """``mean(b) - mean(a)`` with a Welch confidence interval and two-sided p-value.

    With fewer than two values per arm, the interval and p-value are ``nan``.
    """
    ma, sa = _mean_sd(a)
    mb, sb = _mean_sd(b)
    diff = mb - ma
    nan = float("nan")
    if len(a) < 2 or len(b) < 2:
        return {"diff": diff, "ci_low": nan, "ci_high": nan, "p_value": nan, "df": nan, "t": nan}
    va, vb = sa**2 / len(a), sb**2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        p = 0.0 if diff != 0 else 1.0
        return {"diff": diff, "ci_low": diff, "ci_high": diff, "p_value": p, "df": nan, "t": nan}
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = diff / se
    half = _t_ppf(0.5 + level / 2, df) * se
    return {
        "diff": diff,
        "ci_low": diff - half,
        "ci_high": diff + half,
        "p_value": min(1.0, 2 * _t_sf(abs(t), df)),
        "df": df,
        "t": t,
    }


def arm_name(arm: str) -> str:
    """``"cutmix+inverse_frequency"`` -> ``"CutMix+inverse_frequency"``."""
    mix, plus, pw = arm.partition("+")
    return ARM_NAMES.get(mix, mix) + (plus + pw if plus else "")


def summarize(
    results: dict[str, list[dict[str, Any]]], arms: list[str], metric: str = "val_acc"
) -> dict[str, Any]:
    """Per-arm mean ± sd of final accuracy/loss and each arm's difference from the first arm.

    The differences (CI, p, seeds better) are computed on ``metric``: ``"val_acc"`` or, for an
    imbalanced training set, ``"val_balanced_acc"``.
    """
    table: dict[str, Any] = {}
    for arm in arms:
        runs = results[arm]
        acc = [r["final"]["val_acc"] for r in runs]
        mvals = [r["final"][metric] for r in runs]
        bal = [r["final"].get("val_balanced_acc", float("nan")) for r in runs]
        groups = {g: [r["final"].get(f"val_{g}") for r in runs] for g in ("many", "medium", "few")}
        top5 = [r["final"]["val_top5"] for r in runs]
        loss = [r["final"]["val_loss"] for r in runs]
        best = [max(h["val_acc"] for h in r["history"] if h["val_acc"] is not None) for r in runs]
        table[arm] = {
            "name": ARM_NAMES.get(arm, arm),
            "seeds": [r["config"]["seed"] for r in runs],
            "val_acc": acc,
            "acc_mean": _mean_sd(acc)[0],
            "acc_sd": _mean_sd(acc)[1],
            "top5_mean": _mean_sd(top5)[0],
            "loss_mean": _mean_sd(loss)[0],
            "loss_sd": _mean_sd(loss)[1],
            "best_acc_mean": _mean_sd(best)[0],
            "wall_s_mean": _mean_sd([r["wall_s"] for r in runs])[0],
            "cpu_s_total": sum(r["cpu_s"] for r in runs),
            "metric_values": mvals,
            "metric_mean": _mean_sd(mvals)[0],
            "metric_sd": _mean_sd(mvals)[1],
            "val_balanced_acc": bal,
            "bal_mean": _mean_sd(bal)[0],
            "bal_sd": _mean_sd(bal)[1],
            "per_class_mean": _mean_per_class(runs),
        }
        table[arm]["name"] = arm_name(arm)
        for g, vals in groups.items():
            if vals and all(v is not None for v in vals):
                table[arm][f"{g}_mean"], table[arm][f"{g}_sd"] = _mean_sd([float(v) for v in vals])
    ref = arms[0]
    diffs = {}
    for arm in arms[1:]:
        a, b = table[ref]["metric_values"], table[arm]["metric_values"]
        d = welch(a, b)
        paired = [y - x for x, y in zip(a, b)]
        d["wins"] = sum(1 for x in paired if x > 0)
        d["pairs"] = len(paired)
        d["beats_spread"] = d["diff"] > max(table[ref]["metric_sd"], table[arm]["metric_sd"])
        diffs[arm] = d
    return {"reference": ref, "metric": metric, "arms": table, "differences": diffs}


def _mean_per_class(runs: list[dict[str, Any]]) -> list[float | None]:
    rows = [r["final"].get("val_per_class") or r["final"].get("per_class") for r in runs]
    out: list[float | None] = []
    for c in range(len(rows[0]) if rows and rows[0] else 0):
        vals = [row[c] for row in rows if row[c] is not None]
        out.append(sum(vals) / len(vals) if vals else None)
    return out


def ci_caveat(d: dict[str, Any], n: int) -> str | None:
    """Why the confidence interval of a difference is not worth printing, or ``None`` if it is.

    Example:
        >>> ci_caveat({"ci_low": -1.42, "ci_high": 1.28}, 2)
        'n = 2 seeds is too few for a meaningful interval (use --seeds 3 or more)'
    """
    if n < 3:
        return f"n = {n} seed{'s' if n != 1 else ''} is too few for a meaningful interval (use --seeds 3 or more)"
    lo, hi = d.get("ci_low", float("nan")), d.get("ci_high", float("nan"))
    if math.isnan(lo) or math.isnan(hi):
        return "no interval (no spread to estimate)"
    if lo < -1 or hi > 1:
        return (
            f"the interval runs outside what an accuracy difference can be (±100 points) with n = {n} "
            "seeds: too few for a meaningful interval (add seeds)"
        )
    return None


def _pct(x: float) -> str:
    return "nan" if math.isnan(x) else f"{100 * x:.2f}"


def format_table(summary: dict[str, Any]) -> str:
    """A Markdown table of the arms and their differences from the reference."""
    groups = [
        g
        for g in ("many", "medium", "few")
        if all(f"{g}_mean" in a for a in summary["arms"].values())
    ]
    lines = [
        "| arm | seeds | val accuracy % (mean ± sd) | balanced acc % (mean ± sd) | "
        + "".join(f"{g}-shot % | " for g in groups)
        + "top-5 % | val loss (mean ± sd) | wall s / run |",
        "|---|---|---|---|" + "---|" * len(groups) + "---|---|---|",
    ]
    for arm in summary["arms"].values():
        bal = f"{_pct(arm['bal_mean'])} ± {_pct(arm['bal_sd'])}" if "bal_mean" in arm else "–"
        grp = "".join(f"{_pct(arm[f'{g}_mean'])} ± {_pct(arm[f'{g}_sd'])} | " for g in groups)
        lines.append(
            f"| {arm['name']} | {len(arm['seeds'])} | {_pct(arm['acc_mean'])} ± {_pct(arm['acc_sd'])} "
            f"| {bal} | {grp}{_pct(arm['top5_mean'])} | {arm['loss_mean']:.4f} ± {arm['loss_sd']:.4f} | {arm['wall_s_mean']:.1f} |"
        )
    ref = summary["arms"][summary["reference"]]["name"]
    metric = summary.get("metric", "val_acc")
    what = "balanced accuracy" if metric == "val_balanced_acc" else "accuracy"
    if metric != "val_acc":
        lines.append("")
        lines.append(
            "The training set is imbalanced: the differences below are in balanced accuracy "
            "(mean per-class recall)."
        )
    for arm, d in summary["differences"].items():
        name = summary["arms"][arm]["name"]
        caveat = ci_caveat(d, min(d["pairs"], len(summary["arms"][summary["reference"]]["seeds"])))
        ci = (
            f"95% CI not shown: {caveat}"
            if caveat
            else f"95% CI [{_pct(d['ci_low'])}, {_pct(d['ci_high'])}]"
        )
        lines.append("")
        lines.append(
            f"{name} − {ref} ({what}): {100 * d['diff']:+.2f} points, {ci} (Welch t-test p = "
            f"{d['p_value']:.3g}); better on {d['wins']}/{d['pairs']} seeds; "
            + (
                "no seed-to-seed spread to compare with (one seed)."
                if d["pairs"] < 2
                else "larger than the seed-to-seed spread."
                if d["beats_spread"]
                else "NOT larger than the seed-to-seed spread."
            )
        )
    return "\n".join(lines)


def plot_curves(results: dict[str, list[dict[str, Any]]], arms: list[str], path: Path) -> None:
    """Validation accuracy and training loss per epoch, mean ± sd over seeds, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    from matplotlib.ticker import MaxNLocator

    for arm in arms:
        hist = [r["history"] for r in results[arm]]
        n = min(len(h) for h in hist)
        ep = np.arange(1, n + 1)
        for ax, key, scale in ((axes[0], "val_acc", 100.0), (axes[1], "train_loss", 1.0)):
            keep = [i for i in range(n) if all(h[i][key] is not None for h in hist)]
            v = np.array([[h[i][key] for i in keep] for h in hist], dtype=float) * scale
            m = v.mean(0)
            s = v.std(0, ddof=1) if len(v) > 1 else np.zeros(len(keep))
            ax.plot(ep[keep], m, marker="." if len(keep) < 30 else None, label=arm_name(arm))
            ax.fill_between(ep[keep], m - s, m + s, alpha=0.25)
    axes[0].set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy")
    axes[1].set(xlabel="epoch", ylabel="training loss", title="training loss (on mixed batches)")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no fractional epochs on short runs
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def shown(name: str) -> str:
    r"""A class name as text: folder names that are not valid UTF-8 (kept as surrogate escapes, so
    that they still match their folders) get U+FFFD instead, which fonts and UTF-8 files accept.

    Example:
        >>> shown("cat"), shown("\udcff") == "\ufffd"
        ('cat', True)
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def plot_per_class(summary: dict[str, Any], arms: list[str], path: Path) -> None:
    """Per-class validation accuracy (mean over seeds), one bar per arm per class; the training
    count of every class is written under its name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    classes = summary.get("classes") or []
    counts = summary.get("train_class_counts") or []
    c = len(classes)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * c * max(1, len(arms)) / 2 + 2), 4))
    width = 0.8 / max(1, len(arms))
    x = np.arange(c)
    for i, arm in enumerate(arms):
        vals = [100 * v if v is not None else 0.0 for v in summary["arms"][arm]["per_class_mean"]]
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, vals[:c], width, label=arm_name(arm))
    ax.set_xticks(x)
    ax.set_xticklabels(
        [f"{shown(n)}\n({k})" for n, k in zip(classes, counts)]
        if len(counts) == c
        else [shown(n) for n in classes],
        rotation=0 if c <= 12 else 90,
        fontsize=8,
    )
    ax.set(
        ylabel="validation accuracy (%)",
        ylim=(0, 100),
        title="per-class accuracy, mean over seeds (training images per class in brackets)",
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_compare(
    base: TrainConfig, *, arms: list[str], seeds: int, out: str | Path, argv: list[str]
) -> int:
    """Train every arm for seeds ``0..seeds-1`` on the same data, then write the report folder."""
    if not 1 <= seeds <= 1000:
        raise UsageError(f"seeds: expected 1..1000, got {seeds}")
    if len(arms) < 2 or len(set(arms)) != len(arms):
        raise UsageError(f"arms: expected at least two distinct mixes, got {','.join(arms)!r}")
    parsed = {a: parse_arm(a, base.partner_weights, MIX_CHOICES) for a in arms}
    out = Path(out)
    for a in arms:  # checks the mixing options of every arm once, before any training
        mix_a, pw_a = parsed[a]
        replace(base, mix=mix_a, partner_weights=pw_a, out=str(out)).validate()
    base = replace(base, mix=parsed[arms[-1]][0], out=str(out)).validate()
    check_out_outside_data(str(out), base.data)
    with RunLock(out):
        return _run_compare(base, arms, parsed, seeds, out, argv)


def _run_compare(
    base: TrainConfig,
    arms: list[str],
    parsed: dict[str, tuple[str, str]],
    seeds: int,
    out: Path,
    argv: list[str],
) -> int:
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    splits = load_splits(base)
    counts = splits.info["train_class_counts"]
    print(
        f"compare {', '.join(arm_name(a) for a in arms)} × {seeds} seeds on "
        f"{base.data}: {len(splits.train)} train / {len(splits.val)} val images, "
        f"{base.model}, {base.epochs} epochs",
        file=sys.stderr,
        flush=True,
    )
    if base.imbalance is not None or any(pw != "none" for _, pw in parsed.values()):
        print(
            f"training class counts ({', '.join(map(shown, splits.classes))}): {counts}"
            + (f" (imbalance R = {base.imbalance:g})" if base.imbalance is not None else "")
            + f"; validation: {splits.info['val_class_counts']}",
            file=sys.stderr,
            flush=True,
        )
    results: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    for seed in range(seeds):
        for arm in arms:
            cfg = replace(
                base,
                mix=parsed[arm][0],
                partner_weights=parsed[arm][1],
                seed=seed,
                out=str(out / "runs" / f"{arm}-seed{seed}"),
                quiet=True,
            )
            r = train(cfg, splits=splits)
            results[arm].append(r)
            print(
                f"  seed {seed} {arm_name(arm):<9} val acc {100 * r['final']['val_acc']:.2f}%"
                f"  balanced {100 * r['final']['val_balanced_acc']:.2f}%"
                + (
                    f"  few-shot {_pct(r['final']['val_few'])}%"
                    if r["final"].get("val_few") is not None
                    else ""
                )
                + f"  ({r['wall_s']:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    imbalanced = is_imbalanced(counts, base.imbalance)
    summary = summarize(results, arms, "val_balanced_acc" if imbalanced else "val_acc")
    summary["train_class_counts"] = counts
    summary["val_class_counts"] = splits.info["val_class_counts"]
    summary["classes"] = list(splits.classes)
    summary["imbalance"] = base.imbalance
    summary["wall_s"] = round(time.perf_counter() - t_wall, 1)
    summary["cpu_s"] = round(time.process_time() - t_cpu, 1)
    summary["config"] = replace(base, mix="(per arm)", out=str(out)).to_dict()
    summary["arm_settings"] = {
        a: {"mix": m, "partner_weights": pw} for a, (m, pw) in parsed.items()
    }
    summary["data"] = {k: v for k, v in splits.info.items() if k != "skipped"}
    summary["command"] = "cutmix " + " ".join(shlex.quote(a) for a in argv)
    summary["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    plot_curves(results, arms, out / "curves.png")
    plot_per_class(summary, arms, out / "per_class.png")
    mix_arm = next((parsed[a][0] for a in arms if parsed[a][0] != "none"), "cutmix")
    preview_p = base.p
    with contextlib.suppress(ImportError):  # the preview needs Pillow
        preview_from_splits(
            splits,
            out=out / "preview.png",
            mix=mix_arm,
            alpha=base.alpha,
            mixup_alpha=base.mixup_alpha,
            p=preview_p,
            mode=base.mode,
            num=16,
            seed=0,
        )
    threads = torch.get_num_threads()
    command = summary["command"]
    if "--threads" not in argv:  # bit-for-bit repeats need the same thread count
        command += f" --threads {threads}"
    table = format_table(summary)
    train_cmds = [
        "cutmix train "
        + " ".join(
            shlex.quote(a)
            for a in replace(
                base,
                mix=parsed[arm][0],
                partner_weights=parsed[arm][1],
                seed=s,
                out=str(out / "runs" / f"{arm}-seed{s}"),
            ).to_args()
        )
        + f" --threads {threads}"
        for s in range(seeds)
        for arm in arms
    ]
    (out / "reproduce.sh").write_text(
        "#!/usr/bin/env bash\n"
        f"# {threads} torch threads: results repeat bit for bit only with the same thread count on the\n"
        f"# same CPU model ({summary['machine']['cpu']}), torch {torch.__version__}.\n"
        "# The whole comparison:\n"
        + command
        + "\n# or run by run:\n"
        + "\n".join("# " + c for c in train_cmds)
        + "\n"
    )
    # strict JSON: the interval of one seed is null, not NaN
    (out / "summary.json").write_text(
        json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n"
    )
    (out / "report.md").write_text(
        f"# Does {' or '.join(arm_name(a) for a in arms[1:])} help? ({base.data})\n\n"
        f"Data: {summary['data'].get('description', base.data)}; {len(splits.train)} train / "
        f"{len(splits.val)} validation images ({summary['data'].get('split', '')}).\n"
        f"Recipe: model {base.model}, {base.epochs} epochs, batch {base.batch_size}, {base.optimizer} lr {base.lr} "
        f"(warm-up {base.warmup_epochs} epochs, cosine), weight decay {base.weight_decay}, label smoothing "
        f"{base.label_smoothing}, flip {base.flip}, crop padding {base.crop_padding}; CutMix α {base.alpha}, "
        f"MixUp α {base.mixup_alpha}, p {base.p}, mode {base.mode}, mixing off for the last {base.mix_off_epochs} epochs.\n"
        f"Accuracy at the last epoch, seeds 0..{seeds - 1}; every arm sees the same data order per seed.\n\n"
        + (
            f"Training class counts ({', '.join(map(shown, splits.classes))}): {counts}"
            + (f" (long-tailed, R = {base.imbalance:g})" if base.imbalance is not None else "")
            + f"; validation: {splits.info['val_class_counts']}. Shot groups by training images: "
            "many > 100, medium 20–100, few < 20.\n\n"
            if imbalanced
            else ""
        )
        + f"{table}\n\n![learning curves](curves.png)\n\n"
        "![per-class accuracy](per_class.png)\n\n"
        f"![mixed samples](preview.png)\n\nThe preview draws {ARM_NAMES.get(mix_arm, mix_arm)} "
        f"with the recipe's p = {preview_p:g}: "
        + (
            "every image is mixed.\n\n"
            if preview_p >= 1
            else f"about {100 * (1 - preview_p):.0f}% of the images are left unmixed, as in training.\n\n"
        )
        + f"Total: {summary['wall_s']:.0f} s wall, {summary['cpu_s']:.0f} s CPU "
        f"({summary['machine']['threads']} torch threads).\n\n"
        f"## Reproduce\n\n```bash\n{command}\n```\n\nRun by run: see `reproduce.sh`; every run's "
        f"config is in `runs/<arm>-seed<k>/config.json`.\n"
    )
    print(table)
    print(
        f"\nreport: {out / 'report.md'}  ({summary['wall_s']:.0f} s wall, {summary['cpu_s']:.0f} s CPU)"
    )
    return 0


def evaluate_checkpoint(
    checkpoint: str,
    *,
    data: str | None = None,
    split: str = "val",
    model: str | None = None,
    batch_size: int = 500,
) -> dict[str, Any]:
    """Top-1, top-5 and per-class accuracy of a checkpoint on its validation split (or ``data``)."""
    if batch_size < 1:
        raise UsageError(f"batch-size: expected at least 1, got {batch_size}")
    state = load_checkpoint(checkpoint)
    check_checkpoint(state, checkpoint)
    name = state["model_name"]
    if model is not None and model != name:
        raise UsageError(
            f"checkpoint: expected a checkpoint of model {model!r}, got one of {name!r}"
        )
    if split == "all":
        if data is None:
            raise UsageError("data: expected --data FOLDER with --split all, got none")
        return evaluate_all(state, data, batch_size=batch_size)
    cfg = TrainConfig.from_dict(state["config"])
    if data is not None:
        cfg = replace(cfg, data=data)
    splits = load_splits(cfg)
    c, h, _ = splits.image_shape
    if (
        splits.num_classes != state["num_classes"]
        or c != state["in_channels"]
        or h != state["image_size"]
    ):
        raise UsageError(
            f"data: expected {state['num_classes']} classes of {state['in_channels']}x{state['image_size']}x"
            f"{state['image_size']} images (as the checkpoint), got {splits.num_classes} of {c}x{h}x{h}"
        )
    net = build_model(name, state["num_classes"], c, h, parse_model_kwargs(cfg.model_kwargs))
    load_weights(net, state["model"], checkpoint)
    dist = Dist()
    device = pick_device("auto", dist)
    net = net.to(device)
    mean = torch.tensor(state["mean"], device=device).view(1, c, 1, 1)
    std = torch.tensor(state["std"], device=device).view(1, c, 1, 1)
    d = splits.val if split == "val" else splits.train
    ev = evaluate_model(net, d, mean, std, state["num_classes"], device, batch_size=batch_size)
    # a class with no image in this split has no accuracy (it was reported as 0 %)
    per_class = [a if n > 0 else None for a, n in zip(ev["per_class"], ev["class_count"])]
    return {
        "model": name,
        "data": cfg.data,
        "split": split,
        "epoch": state["epoch"],
        "count": ev["count"],
        "top1": ev["acc"],
        "top5": ev["top5"],
        "loss": ev["loss"],
        "balanced_acc": balanced_accuracy(per_class, ev["class_count"]),
        "classes": state["classes"],
        "per_class": per_class,
        "class_count": ev["class_count"],
    }
