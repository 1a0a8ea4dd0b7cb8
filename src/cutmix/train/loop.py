"""One training run: data, model, optimiser, schedule, mixing, evaluation, checkpoints, DDP.

Reproducibility: every random stream of an epoch (data order, flip/crop, mixing, DataLoader workers)
is seeded from ``(seed, epoch, rank)``; the model starts from ``seed``. Checkpoints (written atomically
after every epoch, plain tensors and Python values only, so ``torch.load(weights_only=True)`` reads
them) hold the model, the optimiser, the schedule position and the global RNG state; ``resume`` from
one therefore continues exactly where the run stopped, bit for bit.

Under ``torchrun`` (``WORLD_SIZE > 1``) the run uses DDP (gloo on CPU, nccl on GPU): every epoch the
same permutation is drawn on all ranks, padded to a multiple of the world size and dealt out
``perm[rank::world]``; each rank mixes with its own stream; metrics are summed across ranks; only
rank 0 writes files and prints.

Example:
    >>> from cutmix.train.config import TrainConfig, check_out_outside_data
    >>> import tempfile
    >>> cfg = TrainConfig(epochs=1, train_subset=100, out=tempfile.mkdtemp(), quiet=True)
    >>> result = train(cfg)
    >>> 0.0 <= result["final"]["val_acc"] <= 1.0
    True
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import cutmix
from cutmix.train.config import TrainConfig, check_out_outside_data
from cutmix.train.data import Data, Splits, load_data
from cutmix.train.errors import TrainingDiverged, UsageError
from cutmix.train.imbalance import class_counts, long_tail_indices, partner_class_weights
from cutmix.train.lock import RunLock, clean_temp_files
from cutmix.train.logs import MetricLogs
from cutmix.train.metrics import eval_extras
from cutmix.train.models import build_model, check_model_fits, parse_model_kwargs

__all__ = [
    "CHECKPOINT_FORMAT",
    "build_mix",
    "evaluate_model",
    "load_checkpoint",
    "load_splits",
    "train",
]

CHECKPOINT_FORMAT = "cutmix-checkpoint/1"


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes and Python versions)."""
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


# ---------------------------------------------------------------------------------- distributed
class Dist:
    """Rank, world size and the reductions used by the loop (a no-op without DDP)."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.started = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def start(self, device: torch.device) -> None:
        if self.enabled and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
            self.started = True

    def stop(self) -> None:
        if self.started and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def sum(self, t: Tensor) -> Tensor:
        if self.enabled:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t


def pick_device(name: str, dist: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device: expected an available device, got {name!r} (no CUDA)")
        if device.index is None:
            device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


# ----------------------------------------------------------------------------------------- parts
def build_mix(
    cfg: TrainConfig, num_classes: int, class_counts: list[int] | None = None
) -> cutmix.CutMix | cutmix.MixUp | cutmix.RandomMix | None:
    """The mixing transform the config asks for (``None`` for ``--mix none``).

    ``--partner-weights`` become per-class weights from ``class_counts`` (the training set's),
    fixed for the run, not recounted in every batch.
    """
    ls = cfg.label_smoothing
    pw = None
    if cfg.mix != "none" and cfg.partner_weights not in (None, "none"):
        if class_counts is None:
            raise UsageError("partner-weights: expected the training set's class counts, got none")
        pw = partner_class_weights(cfg.partner_weights, class_counts)
    try:
        if cfg.mix == "none":
            return None
        if cfg.mix == "cutmix":
            return cutmix.CutMix(
                cfg.alpha,
                num_classes,
                p=cfg.p,
                mode=cfg.mode,  # type: ignore[arg-type]
                label_smoothing=ls,
                partner_weights=pw,
            )
        if cfg.mix == "mixup":
            return cutmix.MixUp(
                cfg.mixup_alpha,
                num_classes,
                p=cfg.p,
                mode=cfg.mode,  # type: ignore[arg-type]
                label_smoothing=ls,
                partner_weights=pw,
            )
        kids: list[cutmix.CutMix | cutmix.MixUp] = [
            cutmix.CutMix(cfg.alpha, num_classes, p=cfg.p, mode=cfg.mode, partner_weights=pw),  # type: ignore[arg-type]
            cutmix.MixUp(cfg.mixup_alpha, num_classes, p=cfg.p, mode=cfg.mode, partner_weights=pw),  # type: ignore[arg-type]
        ]
        return cutmix.RandomMix(kids, num_classes=num_classes, label_smoothing=ls)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e


def load_splits(cfg: TrainConfig) -> Splits:
    splits = load_data(
        cfg.data,
        image_size=cfg.image_size,
        val_fraction=cfg.val_fraction,
        split_seed=cfg.split_seed,
        train_subset=cfg.train_subset,
        limit_per_class=cfg.limit_per_class,
        use_cache=cfg.cache,
    )
    return apply_imbalance(splits, cfg)


def apply_imbalance(splits: Splits, cfg: TrainConfig) -> Splits:
    """Thin the training set to the long-tail profile of ``--imbalance`` (after the validation split,
    which stays balanced) and record the training class counts in ``splits.info``."""

    if cfg.imbalance is not None and "imbalance" not in splits.info:
        idx, _ = long_tail_indices(
            splits.train.y, splits.num_classes, cfg.imbalance, cfg.split_seed
        )
        splits.train = splits.train.subset(idx)
        splits.info["imbalance"] = cfg.imbalance
        splits.info["train_size"] = len(splits.train)
        if len(splits.train) == 0:
            raise UsageError("imbalance: expected a non-empty long-tailed training set, got none")
    splits.info["train_class_counts"] = class_counts(splits.train.y, splits.num_classes)
    splits.info["val_class_counts"] = class_counts(splits.val.y, splits.num_classes)
    return splits


def lr_at(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Linear warm-up over ``warmup_epochs`` (at most the run) then cosine decay to zero."""
    total = cfg.epochs * steps_per_epoch
    warm = min(total // 2, round(cfg.warmup_epochs * steps_per_epoch))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def augment(x: Tensor, flip: bool, pad: int, g: torch.Generator) -> Tensor:
    """Random horizontal flip and random crop with zero padding ``pad``, per sample, vectorised."""
    n, _, h, w = x.shape
    if flip:
        f = torch.rand(n, generator=g) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(-1), x)
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        rows = (oy[:, None] + torch.arange(h))[:, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, :]
        x = xp.permute(0, 2, 3, 1)[torch.arange(n)[:, None, None], rows, cols].permute(0, 3, 1, 2)
        x = x.contiguous()
    return x


class _AugDataset(torch.utils.data.Dataset):
    """Per-sample view for DataLoader workers; flip/crop drawn from the worker's torch RNG."""

    def __init__(self, data: Data, flip: bool, pad: int) -> None:
        self.data, self.flip, self.pad = data, flip, pad

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = self.data.x[i : i + 1]
        if self.flip or self.pad:
            x = augment(x, self.flip, self.pad, torch.default_generator)
        return x[0], self.data.y[i]


# ------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    data: Data,
    mean: Tensor,
    std: Tensor,
    num_classes: int,
    device: torch.device,
    dist: Dist | None = None,
    batch_size: int = 500,
    amp: bool = False,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Loss, top-1, top-5 and per-class accuracy of ``model`` on ``data`` (summed over DDP ranks)."""
    dist = dist or Dist()
    was_training = model.training
    model.eval()
    idx = (
        torch.arange(dist.rank, len(data), dist.world) if dist.enabled else torch.arange(len(data))
    )
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros(num_classes, dtype=torch.float64, device=device)
    top5 = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros(num_classes, dtype=torch.float64, device=device)
    k = min(5, num_classes)
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        x = _prepare(data.x[b], mean, std, device, channels_last)
        y = data.y[b].to(device)
        with _autocast(device, amp):
            logits = model(x)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        pred = logits.topk(k, dim=1).indices
        hit1 = (pred[:, 0] == y).double()
        correct.index_add_(0, y, hit1)
        count.index_add_(0, y, torch.ones_like(hit1))
        top5 += (pred == y[:, None]).any(1).double().sum()
    stats = dist.sum(torch.cat([loss_sum[None], top5[None], correct, count]))
    loss_sum, top5, correct, count = (
        stats[0],
        stats[1],
        stats[2 : 2 + num_classes],
        stats[2 + num_classes :],
    )
    n = float(count.sum())
    model.train(was_training)
    per_class = (correct / count.clamp_min(1)).tolist()
    return {
        "loss": float(loss_sum) / max(n, 1.0),
        "acc": float(correct.sum()) / max(n, 1.0),
        "top5": float(top5) / max(n, 1.0),
        "per_class": per_class,
        "count": int(n),
        "class_count": [int(v) for v in count.tolist()],
    }


def _autocast(device: torch.device, amp: bool) -> Any:
    if not amp:
        return nullcontext()
    dtype = (
        torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    )
    return torch.autocast(device.type, dtype=dtype)


def _prepare(
    x: Tensor, mean: Tensor, std: Tensor, device: torch.device, channels_last: bool
) -> Tensor:
    x = x.to(device, non_blocking=True).float().div_(255.0).sub_(mean).div_(std)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# ----------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a clear :class:`UsageError` if it is not one."""
    p = Path(path)
    if p.is_dir():
        p = p / "last.pt"
    if not p.is_file():
        raise UsageError(f"checkpoint: expected a checkpoint file, got missing path {str(path)!r}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many kinds
        raise UsageError(
            f"checkpoint: expected a cutmix checkpoint in {p}, got an unreadable file ({e})"
        ) from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(
            f"checkpoint: expected a cutmix checkpoint ({CHECKPOINT_FORMAT}) in {p}, got something else"
        )
    return state


def load_weights(model: nn.Module, state: dict[str, Any], where: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise UsageError(
            f"checkpoint: expected weights that fit the model, got a mismatch in {where} ({first})"
        ) from e


# ------------------------------------------------------------------------------------------ train
def _log(cfg: TrainConfig, dist: Dist, msg: str) -> None:
    if dist.main and not cfg.quiet:
        print(msg, file=sys.stderr, flush=True)


def train(
    cfg: TrainConfig,
    *,
    resume: dict[str, Any] | None = None,
    splits: Splits | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Run (or continue, with ``resume`` = a loaded checkpoint) one training run.

    The run folder ``cfg.out`` is locked while the run writes it (see :class:`RunLock`). Resuming
    on data whose fingerprint differs from the checkpoint's is refused unless ``force``. A
    non-finite loss stops the run with :class:`TrainingDiverged` (its last good checkpoint kept).

    Returns a summary: the config, the per-epoch history, the final metrics, CPU and wall time.
    """
    cfg.validate()
    check_out_outside_data(cfg.out, cfg.data)
    dist = Dist()
    device = pick_device(cfg.device, dist)
    lock = RunLock(cfg.out) if dist.main else nullcontext()
    with lock:
        if dist.main:
            clean_temp_files(cfg.out)
        dist.start(device)
        try:
            return _train(cfg, dist, device, resume, splits, force)
        finally:
            dist.stop()


@dataclass
class _Run:
    """What one training run holds between epochs (built by :func:`_setup`)."""

    cfg: TrainConfig
    dist: Dist
    device: torch.device
    splits: Splits
    model: nn.Module
    net: nn.Module  # the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    mix: Any
    mean: Tensor
    std: Tensor
    amp: bool
    channels_last: bool
    train_counts: list[int]
    long_tailed: bool
    out: Path
    n: int
    per_rank: int
    steps_per_epoch: int
    start_epoch: int
    step: int
    history: list[dict[str, Any]]
    logs: MetricLogs | None
    evaluate: Callable[[], dict[str, Any]] = field(repr=False)


def _train(
    cfg: TrainConfig,
    dist: Dist,
    device: torch.device,
    resume: dict[str, Any] | None,
    splits: Splits | None,
    force: bool = False,
) -> dict[str, Any]:
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    run = _setup(cfg, dist, device, resume, splits, force)
    stopped, last_eval = False, None
    for epoch in range(run.start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        sums = _train_epoch(run, epoch)
        last_eval, stopped = _end_epoch(run, epoch, sums, t0)
        if stopped:
            break
    return _finish(run, last_eval, stopped, t_wall, t_cpu)


def _setup(
    cfg: TrainConfig,
    dist: Dist,
    device: torch.device,
    resume: dict[str, Any] | None,
    splits: Splits | None,
    force: bool,
) -> _Run:
    """Data, model, optimiser, mixing, the resumed state and the run folder's files."""
    amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    splits = apply_imbalance(splits, cfg) if splits is not None else load_splits(cfg)
    num_classes = splits.num_classes
    train_counts = list(splits.info["train_class_counts"])
    long_tailed = cfg.imbalance is not None
    c, h, w = splits.image_shape
    if h != w:
        raise UsageError(f"data: expected square images, got {h}x{w}")
    if cfg.crop_padding > h:
        raise UsageError(
            f"crop-padding: expected at most the image side {h}, got {cfg.crop_padding}"
        )
    if resume is not None:
        _check_fingerprint(cfg, dist, resume, splits, force)
    out = Path(cfg.out)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, num_classes, c, h, parse_model_kwargs(cfg.model_kwargs))
    check_model_fits(model, cfg.model, c, h)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    xf = splits.train.x.float().div_(255.0)
    mean = xf.mean(dim=(0, 2, 3)).view(1, c, 1, 1).to(device)
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3).view(1, c, 1, 1).to(device)
    del xf
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    mix = build_mix(cfg, num_classes, train_counts)
    if long_tailed or cfg.partner_weights not in (None, "none"):
        _log(
            cfg,
            dist,
            f"training class counts: {train_counts}"
            + (f" (imbalance R = {cfg.imbalance:g})" if long_tailed else ""),
        )

    n = len(splits.train)
    per_rank = math.ceil(n / dist.world)
    # A trailing batch of one is skipped (BatchNorm cannot train on one sample at 1x1).
    steps_per_epoch = per_rank // cfg.batch_size + (per_rank % cfg.batch_size > 1 or per_rank == 1)
    start_epoch, step, history = 0, 0, []
    if resume is not None:
        load_weights(model, resume["model"], "model")
        try:
            opt.load_state_dict(resume["optimizer"])
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as e:
            raise UsageError(
                f"checkpoint: expected an optimizer state of a {cfg.optimizer} optimizer of this "
                f"model, got one that does not fit ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
            ) from e
        start_epoch, step = int(resume["epoch"]), int(resume["step"])
        history = list(resume.get("history", []))
        try:
            torch.set_rng_state(resume["rng"]["torch"])
        except (RuntimeError, TypeError) as e:
            raise UsageError(
                f"checkpoint: expected a torch RNG state, got an invalid one ({e})"
            ) from e
        _log(cfg, dist, f"resuming {cfg.model} at epoch {start_epoch}/{cfg.epochs}")

    net: nn.Module = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(
            json.dumps({**cfg.to_dict(), "train_class_counts": train_counts}, indent=2) + "\n"
        )
        with open(out / "metrics.jsonl", "w") as f:  # rewritten from the checkpoint on resume
            for row in history:
                f.write(json.dumps(row) + "\n")
    logs = MetricLogs.open(out, cfg.log, history) if dist.main and cfg.log else None
    evaluate = functools.partial(
        evaluate_model,
        model,
        splits.val,
        mean,
        std,
        num_classes,
        device,
        dist,
        amp=amp,
        channels_last=channels_last,
    )
    return _Run(
        cfg=cfg,
        dist=dist,
        device=device,
        splits=splits,
        model=model,
        net=net,
        opt=opt,
        mix=mix,
        mean=mean,
        std=std,
        amp=amp,
        channels_last=channels_last,
        train_counts=train_counts,
        long_tailed=long_tailed,
        out=out,
        n=n,
        per_rank=per_rank,
        steps_per_epoch=steps_per_epoch,
        start_epoch=start_epoch,
        step=step,
        history=history,
        logs=logs,
        evaluate=evaluate,
    )


def _train_epoch(run: _Run, epoch: int) -> Tensor:
    """One pass over this rank's share of the training set; returns (loss sum, correct, count)."""
    cfg, dist, device, mix, opt = run.cfg, run.dist, run.device, run.mix, run.opt
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    if mix is not None:
        mix.enabled = epoch < cfg.mix_epochs
    run.net.train()
    order = torch.randperm(
        run.n, generator=torch.Generator().manual_seed(derive_seed(cfg.seed, "order", epoch))
    )
    if dist.enabled:
        order = torch.cat([order, order[: run.per_rank * dist.world - run.n]])[
            dist.rank :: dist.world
        ]
    batches = _batches(cfg, run.splits.train, order, mix, epoch, dist.rank, device)
    if tqdm is not None and dist.main and not cfg.quiet:
        batches = tqdm(
            batches,
            total=run.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=None,
        )
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, correct (own label), count
    for x, y, extra in batches:
        for group in opt.param_groups:
            group["lr"] = lr_at(run.step, cfg, run.steps_per_epoch)
        x = _prepare(x, run.mean, run.std, device, run.channels_last)
        y = y.to(device, non_blocking=True)
        target = extra
        if isinstance(extra, torch.Generator):
            assert mix is not None  # batches carry a generator only when there is a mix
            x, target = mix.apply(x, y, mix.sample(x, generator=extra, labels=y))
        with _autocast(device, run.amp):
            logits = run.net(x)
        logits = logits.float()
        if target is None:
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        else:
            loss = cutmix.soft_target_cross_entropy(logits, target.to(device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.step += 1
        with torch.no_grad():
            sums += torch.stack(
                [
                    loss.detach().double() * len(y),
                    (logits.argmax(1) == y).sum().double(),
                    torch.tensor(float(len(y)), dtype=torch.float64, device=device),
                ]
            )
    return dist.sum(sums)


def _end_epoch(
    run: _Run, epoch: int, sums: Tensor, t0: float
) -> tuple[dict[str, Any] | None, bool]:
    """Evaluate when due, log the row, write the checkpoint; returns (the evaluation, stopping)."""
    cfg, dist, out = run.cfg, run.dist, run.out
    if not math.isfinite(float(sums[0])):
        _diverged(cfg, out, "training loss", float(sums[0]), epoch)
    stopping = (
        cfg.stop_after is not None
        and epoch + 1 - run.start_epoch >= cfg.stop_after
        and epoch + 1 < cfg.epochs
    )
    ev: dict[str, Any] = {"loss": None, "acc": None, "top5": None}
    last_eval = None
    if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs or stopping:
        ev = last_eval = run.evaluate()
        if not math.isfinite(ev["loss"]):
            _diverged(cfg, out, "validation loss", ev["loss"], epoch)
    row = {
        "epoch": epoch + 1,
        "lr": run.opt.param_groups[0]["lr"],
        "mixing": bool(run.mix is not None and run.mix.enabled),
        "train_loss": float(sums[0] / sums[2]),
        "train_acc": float(sums[1] / sums[2]),
        "samples": int(sums[2]),
        "val_loss": ev["loss"],
        "val_acc": ev["acc"],
        "val_top5": ev["top5"],
        "epoch_s": round(time.perf_counter() - t0, 3),
    }
    if last_eval is not None:
        row.update(
            eval_extras(ev["per_class"], ev["class_count"], run.train_counts, run.long_tailed)
        )
    run.history.append(row)
    if dist.main:
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row, allow_nan=False) + "\n")
        if run.logs is not None:
            run.logs.write(run.history)
        save_checkpoint(
            out / "last.pt",
            _state(
                cfg,
                run.model,
                run.opt,
                epoch + 1,
                run.step,
                run.history,
                run.splits,
                run.mean,
                run.std,
            ),
        )
    val = (
        f"  val loss {ev['loss']:.4f}  val acc {100 * ev['acc']:.2f}%"
        if ev["acc"] is not None
        else ""
    )
    _log(
        cfg,
        dist,
        f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {row['train_loss']:.4f}{val}  ({row['epoch_s']:.1f} s)",
    )
    return last_eval, stopping


def _finish(
    run: _Run, last_eval: dict[str, Any] | None, stopped: bool, t_wall: float, t_cpu: float
) -> dict[str, Any]:
    """The run's summary (``summary.json`` on rank 0), after a last evaluation if none is fresh."""
    cfg, splits = run.cfg, run.splits
    final = last_eval if last_eval is not None else run.evaluate()
    result = {
        "config": cfg.to_dict(),
        "history": run.history,
        "final": {
            "val_acc": final["acc"],
            "val_top5": final["top5"],
            "val_loss": final["loss"],
            "per_class": final["per_class"],
            "val_count": final["count"],
            **eval_extras(
                final["per_class"], final["class_count"], run.train_counts, run.long_tailed
            ),
        },
        "train_class_counts": run.train_counts,
        "val_class_counts": final["class_count"],
        "imbalance": cfg.imbalance,
        "classes": splits.classes,
        "data": {k: v for k, v in splits.info.items() if k != "skipped"},
        "skipped": len(splits.info.get("skipped", [])),
        "world_size": run.dist.world,
        "device": str(run.device),
        "amp": run.amp,
        "channels_last": run.channels_last,
        "completed": not stopped,
        "wall_s": round(time.perf_counter() - t_wall, 3),
        "cpu_s": round(time.process_time() - t_cpu, 3),
    }
    if run.logs is not None:
        run.logs.close()
    if run.dist.main:
        (run.out / "summary.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    return result


def _diverged(cfg: TrainConfig, out: Path, what: str, value: float, epoch: int) -> None:
    last = out / "last.pt"
    kept = (
        f"the last good checkpoint is {last} (epoch {epoch})"
        if epoch > 0 and last.is_file()
        else "no checkpoint was written"
    )
    raise TrainingDiverged(
        f"train: expected a finite {what}, got {value} at epoch {epoch + 1}; the run stopped "
        f"({kept}); lower --lr or add --warmup-epochs"
    )


def _check_fingerprint(
    cfg: TrainConfig, dist: Dist, resume: dict[str, Any], splits: Splits, force: bool
) -> None:
    """Resuming on other data than the checkpoint's: a warning, then a refusal unless ``force``."""
    saved, now = resume.get("data_fingerprint"), splits.info.get("fingerprint")
    if saved is None:
        _log(cfg, dist, "warning: the checkpoint has no data fingerprint: cannot check the data")
        return
    if saved == now:
        return
    if dist.main:
        print(
            f"warning: the data {cfg.data!r} differs from the checkpoint's (fingerprint {now}, "
            f"the checkpoint's {saved})",
            file=sys.stderr,
            flush=True,
        )
    if not force:
        raise UsageError(
            f"resume: expected the data the checkpoint was trained on (fingerprint {saved}), got "
            f"different data (fingerprint {now}); pass --force to continue anyway"
        )


def _state(
    cfg: TrainConfig,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    epoch: int,
    step: int,
    history: list[dict[str, Any]],
    splits: Splits,
    mean: Tensor,
    std: Tensor,
) -> dict[str, Any]:
    c, h, _ = splits.image_shape
    return {
        "format": CHECKPOINT_FORMAT,
        "model_name": cfg.model,
        "num_classes": splits.num_classes,
        "in_channels": c,
        "image_size": h,
        "classes": list(splits.classes),
        "mean": mean.flatten().cpu().tolist(),
        "std": std.flatten().cpu().tolist(),
        "config": cfg.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "step": step,
        "history": history,
        "rng": {"torch": torch.get_rng_state()},
        "data_fingerprint": splits.info.get("fingerprint"),
        "cutmix_version": cutmix.__version__,
    }


def _split(order: Tensor, batch_size: int) -> list[Tensor]:
    """Consecutive batches of ``order``; a trailing batch of one sample is dropped (unless alone)."""
    parts = list(order.split(batch_size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts.pop()
    return parts


def _batches(
    cfg: TrainConfig,
    data: Data,
    order: Tensor,
    mix: Any,
    epoch: int,
    rank: int,
    device: torch.device,
) -> Any:
    """Yield ``(images uint8, labels, extra)`` for one epoch of one rank.

    ``extra`` is the soft targets when workers mixed the batch, the generator to mix with in the
    loop, or ``None`` without mixing.
    """
    if cfg.mix_in == "workers" and mix is not None:
        yield from _worker_batches(cfg, data, order, mix, epoch, rank)
        return
    g_aug = torch.Generator().manual_seed(derive_seed(cfg.seed, "augment", epoch, rank))
    g_mix = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, "mix", epoch, rank))
    for idx in _split(order, cfg.batch_size):
        x, y = data.x[idx], data.y[idx]
        x = augment(x, cfg.flip, cfg.crop_padding, g_aug)
        yield x, y, g_mix if mix is not None else None


def _worker_batches(
    cfg: TrainConfig, data: Data, order: Tensor, mix: Any, epoch: int, rank: int
) -> Any:
    torch.manual_seed(derive_seed(cfg.seed, "augment", epoch, rank))  # flip/crop with 0 workers
    loader = torch.utils.data.DataLoader(
        _AugDataset(data, cfg.flip, cfg.crop_padding),
        batch_sampler=[b.tolist() for b in _split(order, cfg.batch_size)],
        num_workers=cfg.workers,
        collate_fn=_KeepLabels(
            cutmix.MixCollate(mix, seed=derive_seed(cfg.seed, "collate", epoch, rank))
        ),
        generator=torch.Generator().manual_seed(derive_seed(cfg.seed, "loader", epoch, rank)),
    )
    yield from loader


class _KeepLabels:
    """``collate_fn`` for workers: mix with :class:`cutmix.MixCollate`, keep the own labels too."""

    def __init__(self, collate: cutmix.MixCollate) -> None:
        self.collate = collate

    def __call__(self, samples: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        labels = torch.stack([s[1] for s in samples])
        images, targets = self.collate(samples)
        return images, labels, targets
