"""The ``cutmix`` command: ``train | compare | preview | evaluate | bench``.

Bad input (missing data, unknown model, incompatible options, a checkpoint of another model...) ends
with one line ``cutmix: error: ...`` on stderr and exit status 2, never a traceback.

Example:
    >>> main(["train", "--epochs", "0"])  # doctest: +SKIP
    cutmix: error: epochs: expected 1..1000000, got 0
    2
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

__all__ = ["build_parser", "main"]


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from cutmix.train.config import MIX_CHOICES, TrainConfig

    d = TrainConfig()
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        default=None,
        help=f"'digits' (built in), an image folder, a CIFAR python folder or an .npz (default {d.data})",
    )
    g.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side images of a folder are resized/cropped to (default 32)",
    )
    g.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="stratified validation fraction (default: the source's test split, else 0.8 for digits, 0.2 otherwise)",
    )
    g.add_argument(
        "--split-seed", type=int, default=None, help="seed of the validation split (default 0)"
    )
    g.add_argument(
        "--train-subset", type=int, default=None, help="train on this many images (stratified)"
    )
    g.add_argument(
        "--limit-per-class",
        type=int,
        default=None,
        help="use only the first K images of every class",
    )
    g.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        default=None,
        help="do not read or write the decoded-image cache",
    )
    g = p.add_argument_group("model and optimisation")
    g.add_argument(
        "--model",
        default=None,
        help=f"tutorial, resnet8, resnet20, preact_resnet18 or a timm name (default {d.model})",
    )
    g.add_argument("--epochs", type=int, default=None, help=f"default {d.epochs}")
    g.add_argument(
        "--batch-size", type=int, default=None, help=f"per process (default {d.batch_size})"
    )
    g.add_argument(
        "--optimizer", choices=("sgd", "adamw"), default=None, help=f"default {d.optimizer}"
    )
    g.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d.lr})")
    g.add_argument(
        "--momentum", type=float, default=None, help=f"SGD momentum (default {d.momentum})"
    )
    g.add_argument("--weight-decay", type=float, default=None, help=f"default {d.weight_decay}")
    g.add_argument(
        "--warmup-epochs",
        type=float,
        default=None,
        help=f"linear warm-up before the cosine decay (default {d.warmup_epochs})",
    )
    g.add_argument("--label-smoothing", type=float, default=None, help="default 0")
    g.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random horizontal flips (default off)",
    )
    g.add_argument(
        "--crop-padding",
        type=int,
        default=None,
        help="random crops after zero padding by this many pixels (default 0: off)",
    )
    g = p.add_argument_group("mixing")
    g.add_argument("--mix", choices=MIX_CHOICES, default=None, help=f"default {d.mix} for train")
    g.add_argument(
        "--alpha", type=float, default=None, help=f"CutMix Beta(α, α) (default {d.alpha})"
    )
    g.add_argument(
        "--mixup-alpha",
        type=float,
        default=None,
        help=f"MixUp Beta(α, α) (default {d.mixup_alpha})",
    )
    g.add_argument(
        "--p", type=float, default=None, help=f"probability that a sample is mixed (default {d.p})"
    )
    g.add_argument(
        "--mode",
        choices=("batch", "pair", "sample"),
        default=None,
        help=f"one box per batch, pair or sample (default {d.mode})",
    )
    g.add_argument(
        "--mix-off-epochs",
        type=int,
        default=None,
        help="no mixing in the last K epochs (default 0)",
    )
    g.add_argument(
        "--mix-in",
        choices=("loop", "workers"),
        default=None,
        help="mix in the training loop or in DataLoader workers (MixCollate) (default loop)",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader workers with --mix-in workers (default 0)",
    )
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=None, help="default 0")
    g.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 (default auto)")
    g.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed precision (default: on for CUDA, off for CPU)",
    )
    g.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on for CUDA, off for CPU",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="evaluate every K epochs and at the end (default: 1 for train, epochs // 10 for compare)",
    )
    g.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    g.add_argument(
        "--quiet", action="store_true", default=None, help="no per-epoch lines or progress bars"
    )
    g.add_argument(
        "--log", default=None, help="extra metric logs next to metrics.jsonl: tensorboard,csv"
    )
    _add_imbalance_options(p)
    _ = fields  # the flags above map 1:1 onto TrainConfig fields


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one ``cutmix: error:`` line (exit 2) like every other bad input."""

    def error(self, message: str) -> Any:
        print(f"cutmix: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _add_imbalance_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("imbalanced data and model options")
    g.add_argument(
        "--imbalance",
        type=float,
        default=None,
        metavar="R",
        help="long-tailed training set (CIFAR-10-LT profile): class c (class-index order = sorted "
        "folder names) keeps floor(n_max * R^(-c/(C-1))) images, drawn with --split-seed, the same "
        "for every arm and seed; the validation split is taken first and stays balanced",
    )
    g.add_argument(
        "--partner-weights",
        default=None,
        metavar="W",
        help="pick CutMix/MixUp partners by class: none, inverse_frequency, sqrt_inverse or a "
        "power p (weight = count^-p), from the training set's class counts (default none)",
    )
    g.add_argument(
        "--model-kwargs",
        default=None,
        metavar="K=V,...",
        help="options for timm.create_model, values as Python literals, e.g. "
        "img_size=32,drop_path_rate=0.1 (timm models only)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cutmix",
        description="Train with and without CutMix and measure whether it helps on your data.",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="{train,compare,preview,evaluate,bench}", parser_class=_Parser
    )

    p = sub.add_parser("train", help="one training run (checkpoints, metrics.jsonl, summary.json)")
    _add_train_options(p)
    p.add_argument("--out", default=None, help="run folder (default runs/train)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue the run of this checkpoint (or run folder) exactly",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="K",
        help="stop after K epochs of this invocation (continue later with --resume)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue even if the data differs from the checkpoint's",
    )

    p = sub.add_parser(
        "compare", help="the same recipe with and without mixing, several seeds: a report"
    )
    _add_train_options(p)
    p.add_argument(
        "--out", default="reports/compare", help="report folder (default reports/compare)"
    )
    p.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (default 3)")
    p.add_argument(
        "--arms",
        default="none,cutmix",
        help="comma-separated arms, MIX or MIX+WEIGHTS; the first is the reference (default "
        "none,cutmix). Minority pasting: --arms none,cutmix,cutmix+inverse_frequency. With an "
        "imbalanced training set the statistics use balanced accuracy; shot groups: many > 100, "
        "medium 20-100, few < 20 training images",
    )

    p = sub.add_parser("preview", help="a PNG grid of mixed samples with boxes and label weights")
    p.add_argument("--data", default="digits")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--mix", choices=("cutmix", "mixup", "randommix"), default="cutmix")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--mixup-alpha", type=float, default=0.2)
    p.add_argument("--p", type=float, default=1.0)
    p.add_argument("--mode", choices=("batch", "pair", "sample"), default="sample")
    p.add_argument("-n", "--num", type=int, default=16, help="images in the grid (default 16)")
    p.add_argument("--cols", type=int, default=8)
    p.add_argument("--scale", type=int, default=4, help="pixel zoom of every image (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="preview.png")

    p = sub.add_parser("evaluate", help="top-1, top-5 and per-class accuracy of a checkpoint")
    p.add_argument("checkpoint", help="a checkpoint file or run folder (its last.pt)")
    p.add_argument(
        "--data",
        default=None,
        help="default: the data the checkpoint was trained on (its validation split)",
    )
    p.add_argument(
        "--split",
        choices=("val", "train", "all"),
        default="val",
        help="val/train: the checkpoint's own split of --data; all: every image of the image "
        "folder --data, classes matched by folder name to the checkpoint's class names",
    )
    p.add_argument(
        "--model", default=None, help="expected model name (checked against the checkpoint)"
    )
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    sub.add_parser("bench", help="speed benchmarks (cutmix.bench)", add_help=False)
    return parser


def _config(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    from cutmix.train.config import TrainConfig

    values = dict(base or {})
    names = {f.name for f in fields(TrainConfig)}
    for k, v in vars(args).items():
        if k in names and v is not None:
            values[k] = v
    return TrainConfig.from_dict(values)


def _threads(args: argparse.Namespace) -> None:
    from cutmix.train.errors import UsageError

    if getattr(args, "threads", None) is not None:
        if not 1 <= args.threads <= 4096:
            raise UsageError(f"threads: expected 1..4096, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)


def cmd_train(args: argparse.Namespace) -> int:
    from cutmix.train.config import TrainConfig
    from cutmix.train.errors import UsageError
    from cutmix.train.loop import load_checkpoint, train

    _threads(args)
    resume = None
    if args.resume:
        from pathlib import Path

        from cutmix.train.checks import check_resume_state

        resume = load_checkpoint(args.resume)
        check_resume_state(resume, args.resume)
        saved = resume["config"]
        if args.model is not None and args.model != saved["model"]:
            raise UsageError(
                f"resume: expected --model {saved['model']} (the checkpoint's model), got {args.model!r}"
            )
        cfg = _config(args, saved)
        default = TrainConfig()
        # The data may be named by another path (a relative one from another folder): the data
        # fingerprint, checked before training, says whether it is the same data.
        same_data = ("data",) if resume.get("data_fingerprint") is None else ()
        for k in (
            *same_data,
            "image_size",
            "val_fraction",
            "split_seed",
            "train_subset",
            "limit_per_class",
            "imbalance",
            "model",
            "seed",
            "batch_size",
            "epochs",
        ):
            want = saved.get(
                k, getattr(default, k)
            )  # a checkpoint of an older cutmix lacks new keys
            if getattr(cfg, k) != want:
                raise UsageError(
                    f"resume: expected --{k.replace('_', '-')} {want} (as in the checkpoint), got {getattr(cfg, k)!r}"
                )
        cfg.stop_after = args.stop_after
        if args.out is None:  # next to the checkpoint, never the path stored inside it
            ck = Path(args.resume).expanduser()
            cfg.out = str(ck if ck.is_dir() else ck.parent)
    else:
        cfg = _config(args)
    result = train(cfg, resume=resume, force=bool(args.force))
    if result.get("completed", True) and int(os.environ.get("RANK", "0")) == 0:
        f = result["final"]
        print(
            f"{cfg.model} on {cfg.data}, mix {cfg.mix}: val acc {100 * f['val_acc']:.2f}%  top-5 {100 * f['val_top5']:.2f}%  ({result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU)  -> {cfg.out}"
        )
        _print_balanced(result)
    elif int(os.environ.get("RANK", "0")) == 0:
        print(
            f"stopped after epoch {result['history'][-1]['epoch']}; continue with: cutmix train --resume {cfg.out}/last.pt"
        )
    return 0


def _print_balanced(result: dict[str, Any]) -> None:
    f = result["final"]
    line = f"balanced accuracy {100 * f['val_balanced_acc']:.2f}%"
    if f.get("val_few") is not None or f.get("val_many") is not None:
        for g in ("many", "medium", "few"):
            v = f.get(f"val_{g}")
            line += f"  {g}-shot " + ("–" if v is None else f"{100 * v:.2f}%")
    if result.get("imbalance") is not None:
        line += f"  (training class counts {result['train_class_counts']})"
    print(line)


def cmd_compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from cutmix.train.config import check_out_dir
    from cutmix.train.report import run_compare

    check_out_dir(args.out, "out")
    _threads(args)
    cfg = _config(args)
    if args.eval_every is None:  # about ten evaluations per run: the final accuracy is what counts
        cfg.eval_every = max(1, cfg.epochs // 10)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    return run_compare(cfg, arms=arms, seeds=args.seeds, out=args.out, argv=list(argv))


def cmd_preview(args: argparse.Namespace) -> int:
    from cutmix.train.checks import check_preview_args
    from cutmix.train.preview_cmd import preview_from_data

    check_preview_args(args)
    path, size = preview_from_data(
        args.data,
        out=args.out,
        mix=args.mix,
        alpha=args.alpha,
        mixup_alpha=args.mixup_alpha,
        p=args.p,
        mode=args.mode,
        num=args.num,
        cols=args.cols,
        scale=args.scale,
        seed=args.seed,
        image_size=args.image_size,
    )
    print(f"wrote {path} ({size[0]}x{size[1]} px)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cutmix.train.errors import UsageError
    from cutmix.train.report import evaluate_checkpoint

    if args.batch_size < 1:
        raise UsageError(f"batch-size: expected at least 1, got {args.batch_size}")
    res = evaluate_checkpoint(
        args.checkpoint,
        data=args.data,
        split=args.split,
        model=args.model,
        batch_size=args.batch_size,
    )
    if args.json:
        from cutmix.train.metrics import json_safe

        print(json.dumps(json_safe(res), indent=2, allow_nan=False))
        return 0
    print(
        f"{res['model']} on {res['data']} ({res['split']}, {res['count']} images): top-1 {100 * res['top1']:.2f}%  top-5 {100 * res['top5']:.2f}%  loss {res['loss']:.4f}"
    )
    print(f"balanced accuracy (mean per-class recall) {100 * res['balanced_acc']:.2f}%")
    from cutmix.train.report import shown as as_text  # folder names need not be valid UTF-8

    names = [as_text(c) for c in res["classes"]]
    width = max(len(c) for c in names)
    counts = res.get("class_count") or [None] * len(names)
    for c, a, n in zip(names, res["per_class"], counts):
        shown = "  (missing: no images)" if a is None else f"{100 * a:6.2f}%"
        print(f"  {c:<{width}}  {shown}" + (f"  ({n} images)" if n else ""))
    if res.get("missing"):
        print(
            f"missing classes (no folder in {res['data']}): {', '.join(map(as_text, res['missing']))}"
        )
    return 0


def cmd_bench(rest: list[str]) -> int:
    import importlib

    try:
        bench = importlib.import_module("cutmix.bench")
    except ImportError as e:
        if getattr(e, "name", "") not in ("cutmix.bench", None):
            raise
        print(
            "cutmix: error: bench: expected the module cutmix.bench, got none installed (run `make bench` from a checkout)",
            file=sys.stderr,
        )
        return 2
    return int(bench.main(rest) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cutmix`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return cmd_bench(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a bad flag (one line already printed)
        return e.code if isinstance(e.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 2
    for name in ("out", "resume", "checkpoint"):  # as --data: a quoted (or zsh --out=~/x) tilde
        value = getattr(args, name, None)  # was checked expanded but written as a folder "./~"
        if isinstance(value, str) and value.startswith("~"):
            setattr(args, name, os.path.expanduser(value))
    try:
        from cutmix.train.errors import EXIT_DIVERGED, TrainingDiverged, UsageError
    except ImportError as e:  # pragma: no cover
        print(
            f"cutmix: error: the training tool needs the cli extras (pip install 'cutmix[cli]'): {e}",
            file=sys.stderr,
        )
        return 2
    try:
        code = _dispatch(args, argv)
        sys.stdout.flush()  # a closed pipe (| head) shows here, not at interpreter exit
        return code
    except BrokenPipeError:  # the reader of stdout went away (| head): nothing left to say
        _stdout_to_devnull()
        return 141  # 128 + SIGPIPE, as the shell reports a command killed by a closed pipe
    except UsageError as e:
        print(f"cutmix: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"cutmix: error: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except MemoryError:
        print(
            f"cutmix: error: {args.command}: expected data and options that fit in memory, got "
            "an allocation failure (try smaller --image-size, --batch-size or --limit-per-class)",
            file=sys.stderr,
        )
        return 2
    except ModuleNotFoundError as e:
        print(
            f"cutmix: error: missing optional package {e.name!r} (pip install 'cutmix[cli]')",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("cutmix: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file the user named or owns: permissions, a full disk, a FIFO...
        if getattr(e, "filename", None) is None:
            return _internal_error()
        print(
            f"cutmix: error: {e.filename}: expected a file or folder this user can read and "
            f"write, got {e.strerror or e}",
            file=sys.stderr,
        )
        return 2
    except Exception:  # not the user's fault: show where, and ask for a report
        return _internal_error()


def _dispatch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.command == "train":
        return cmd_train(args)
    if args.command == "compare":
        return cmd_compare(args, argv)
    if args.command == "preview":
        return cmd_preview(args)
    return cmd_evaluate(args)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not fail again."""
    import os

    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (captured output)
        pass


def _internal_error() -> int:
    import traceback

    traceback.print_exc()
    print(
        "cutmix: internal error: this is a bug in cutmix, not in your input; please report it "
        "to the cutmix project's issue tracker with the command line and the traceback above",
        file=sys.stderr,
    )
    return 1


def quote(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
