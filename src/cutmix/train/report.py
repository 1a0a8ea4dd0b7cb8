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
from cutmix.train.config import MIX_CHOICES, TrainConfig
from cutmix.train.errors import UsageError
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
from cutmix.train.models import build_model
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


def summarize(results: dict[str, list[dict[str, Any]]], arms: list[str]) -> dict[str, Any]:
    """Per-arm mean ± sd of final accuracy/loss and each arm's difference from the first arm."""
    table: dict[str, Any] = {}
    for arm in arms:
        runs = results[arm]
        acc = [r["final"]["val_acc"] for r in runs]
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
        }
    ref = arms[0]
    diffs = {}
    for arm in arms[1:]:
        a, b = table[ref]["val_acc"], table[arm]["val_acc"]
        d = welch(a, b)
        paired = [y - x for x, y in zip(a, b)]
        d["wins"] = sum(1 for x in paired if x > 0)
        d["pairs"] = len(paired)
        d["beats_spread"] = d["diff"] > max(table[ref]["acc_sd"], table[arm]["acc_sd"])
        diffs[arm] = d
    return {"reference": ref, "arms": table, "differences": diffs}


def _pct(x: float) -> str:
    return "nan" if math.isnan(x) else f"{100 * x:.2f}"


def format_table(summary: dict[str, Any]) -> str:
    """A Markdown table of the arms and their differences from the reference."""
    lines = [
        "| arm | seeds | val accuracy % (mean ± sd) | top-5 % | val loss (mean ± sd) | wall s / run |",
        "|---|---|---|---|---|---|",
    ]
    for arm in summary["arms"].values():
        lines.append(
            f"| {arm['name']} | {len(arm['seeds'])} | {_pct(arm['acc_mean'])} ± {_pct(arm['acc_sd'])} "
            f"| {_pct(arm['top5_mean'])} | {arm['loss_mean']:.4f} ± {arm['loss_sd']:.4f} | {arm['wall_s_mean']:.1f} |"
        )
    ref = summary["arms"][summary["reference"]]["name"]
    for arm, d in summary["differences"].items():
        name = summary["arms"][arm]["name"]
        lines.append("")
        lines.append(
            f"{name} − {ref}: {100 * d['diff']:+.2f} points, 95% CI [{_pct(d['ci_low'])}, "
            f"{_pct(d['ci_high'])}] (Welch t-test p = {d['p_value']:.3g}); better on "
            f"{d['wins']}/{d['pairs']} seeds; "
            + (
                "larger than the seed-to-seed spread."
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
    for arm in arms:
        hist = [r["history"] for r in results[arm]]
        n = min(len(h) for h in hist)
        ep = np.arange(1, n + 1)
        for ax, key, scale in ((axes[0], "val_acc", 100.0), (axes[1], "train_loss", 1.0)):
            keep = [i for i in range(n) if all(h[i][key] is not None for h in hist)]
            v = np.array([[h[i][key] for i in keep] for h in hist], dtype=float) * scale
            m = v.mean(0)
            s = v.std(0, ddof=1) if len(v) > 1 else np.zeros(len(keep))
            ax.plot(
                ep[keep], m, marker="." if len(keep) < 30 else None, label=ARM_NAMES.get(arm, arm)
            )
            ax.fill_between(ep[keep], m - s, m + s, alpha=0.25)
    axes[0].set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy")
    axes[1].set(xlabel="epoch", ylabel="training loss", title="training loss (on mixed batches)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
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
    for a in arms:
        if a not in MIX_CHOICES:
            raise UsageError(f"arms: expected mixes from {', '.join(MIX_CHOICES)}, got {a!r}")
    out = Path(out)
    base = replace(base, mix=arms[-1], out=str(out)).validate()  # checks the mixing options once
    with RunLock(out):
        return _run_compare(base, arms, seeds, out, argv)


def _run_compare(
    base: TrainConfig, arms: list[str], seeds: int, out: Path, argv: list[str]
) -> int:
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    splits = load_splits(base)
    print(
        f"compare {', '.join(ARM_NAMES.get(a, a) for a in arms)} × {seeds} seeds on "
        f"{base.data}: {len(splits.train)} train / {len(splits.val)} val images, "
        f"{base.model}, {base.epochs} epochs",
        file=sys.stderr,
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    for seed in range(seeds):
        for arm in arms:
            cfg = replace(
                base, mix=arm, seed=seed, out=str(out / "runs" / f"{arm}-seed{seed}"), quiet=True
            )
            r = train(cfg, splits=splits)
            results[arm].append(r)
            print(
                f"  seed {seed} {ARM_NAMES.get(arm, arm):<9} val acc {100 * r['final']['val_acc']:.2f}%"
                f"  ({r['wall_s']:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    summary = summarize(results, arms)
    summary["wall_s"] = round(time.perf_counter() - t_wall, 1)
    summary["cpu_s"] = round(time.process_time() - t_cpu, 1)
    summary["config"] = replace(base, mix="(per arm)", out=str(out)).to_dict()
    summary["data"] = {k: v for k, v in splits.info.items() if k != "skipped"}
    summary["command"] = "cutmix " + " ".join(shlex.quote(a) for a in argv)
    summary["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    plot_curves(results, arms, out / "curves.png")
    try:
        mix_arm = next((a for a in arms if a != "none"), "cutmix")
        preview_from_splits(
            splits,
            out=out / "preview.png",
            mix=mix_arm,
            alpha=base.alpha,
            mixup_alpha=base.mixup_alpha,
            p=1.0,
            mode=base.mode,
            num=16,
            seed=0,
        )
    except ImportError:  # pragma: no cover - preview needs Pillow
        pass
    table = format_table(summary)
    train_cmds = [
        "cutmix train "
        + " ".join(
            shlex.quote(a)
            for a in replace(
                base, mix=arm, seed=s, out=str(out / "runs" / f"{arm}-seed{s}")
            ).to_args()
        )
        for s in range(seeds)
        for arm in arms
    ]
    (out / "reproduce.sh").write_text(
        "#!/usr/bin/env bash\n# The whole comparison:\n"
        + summary["command"]
        + "\n# or run by run:\n"
        + "\n".join("# " + c for c in train_cmds)
        + "\n"
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(
        f"# Does {' or '.join(ARM_NAMES.get(a, a) for a in arms[1:])} help? ({base.data})\n\n"
        f"Data: {summary['data'].get('description', base.data)}; {len(splits.train)} train / "
        f"{len(splits.val)} validation images ({summary['data'].get('split', '')}).\n"
        f"Recipe: model {base.model}, {base.epochs} epochs, batch {base.batch_size}, {base.optimizer} lr {base.lr} "
        f"(warm-up {base.warmup_epochs} epochs, cosine), weight decay {base.weight_decay}, label smoothing "
        f"{base.label_smoothing}, flip {base.flip}, crop padding {base.crop_padding}; CutMix α {base.alpha}, "
        f"MixUp α {base.mixup_alpha}, p {base.p}, mode {base.mode}, mixing off for the last {base.mix_off_epochs} epochs.\n"
        f"Accuracy at the last epoch, seeds 0..{seeds - 1}; every arm sees the same data order per seed.\n\n"
        f"{table}\n\n![learning curves](curves.png)\n\n![mixed samples](preview.png)\n\n"
        f"Total: {summary['wall_s']:.0f} s wall, {summary['cpu_s']:.0f} s CPU "
        f"({summary['machine']['threads']} torch threads).\n\n"
        f"## Reproduce\n\n```bash\n{summary['command']}\n```\n\nRun by run: see `reproduce.sh`; every run's "
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
    net = build_model(name, state["num_classes"], c, h)
    load_weights(net, state["model"], checkpoint)
    dist = Dist()
    device = pick_device("auto", dist)
    net = net.to(device)
    mean = torch.tensor(state["mean"], device=device).view(1, c, 1, 1)
    std = torch.tensor(state["std"], device=device).view(1, c, 1, 1)
    d = splits.val if split == "val" else splits.train
    ev = evaluate_model(net, d, mean, std, state["num_classes"], device, batch_size=batch_size)
    return {
        "model": name,
        "data": cfg.data,
        "split": split,
        "epoch": state["epoch"],
        "count": ev["count"],
        "top1": ev["acc"],
        "top5": ev["top5"],
        "loss": ev["loss"],
        "classes": state["classes"],
        "per_class": ev["per_class"],
    }
