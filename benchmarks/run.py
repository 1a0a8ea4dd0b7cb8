"""``python -m benchmarks.run``: the full benchmark, and with ``--load`` a quiet and a loaded run.

Without ``--load`` (the full quiet run behind benchmarks/RESULTS.md): sampling, images (with
every peer), soft targets, a training step and scaling, at ``--threads`` (default 1), then the
environment, the full table and issue 5's goal table.

With ``--load``: the ``images`` section at every benchmark shape, twice, first on the machine as
it is ("Quiet"), then while :mod:`benchmarks.hog` keeps every core busy ("Loaded": one process per
core running small training steps, started before and stopped after), at ``--threads`` (default
2, as in a training process). Peers: timm per-sample (``mode="elem"``) and torchvision v2. Each run
prints its table and issue 10's goal table (:func:`benchmarks.goals.load_goals`). 7-8 minutes
on a 2-core machine shared with other jobs (load average ~10).

Example:
    python -m benchmarks.run --load --json benchmarks/results_load.json
    python -m benchmarks.run --threads 1 --reps 25 --json benchmarks/results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

import torch

from benchmarks import suite
from benchmarks.environment import environment
from benchmarks.goals import goals, load_goals
from benchmarks.hog import hogging
from benchmarks.peers import TIMM_ELEM, TORCHVISION
from cutmix.bench import Row, Timer, format_table, shape_str

SHAPES = [
    ((128, 3, 224, 224), torch.float32),
    ((256, 3, 32, 32), torch.float32),
    ((64, 3, 512, 512), torch.float32),
    ((128, 3, 224, 224), torch.uint8),
    ((128, 3, 224, 224), torch.bfloat16),
]
SMOKE_SHAPES = [((4, 3, 16, 16), torch.float32), ((4, 3, 96, 96), torch.uint8)]


def format_goals(gs: list[dict[str, Any]]) -> str:
    lines = ["| goal | measured | target | met |", "|---|---|---|---|"]
    for g in gs:
        met = "yes" if g["met"] else "NO"
        lines.append(f"| {g['goal']} | {g['measured']:.3f} | {g['target']} | {met} |")
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when available)")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (1; --load: 2)")
    ap.add_argument("--reps", type=int, default=None, help="timed rounds per case (21; --load: 5)")
    ap.add_argument(
        "--warmup", type=int, default=None, help="untimed calls per case (2; --load: 1)"
    )
    ap.add_argument(
        "--budget", type=float, default=None, help="max s per slow case (4; --load: 1.5)"
    )
    ap.add_argument(
        "--sections",
        default="sampling,images,targets,train,scaling",
        help="comma list of sampling, images, targets, train, scaling (not with --load)",
    )
    ap.add_argument("--load", action="store_true", help="images quiet, then under benchmarks.hog")
    ap.add_argument("--hogs", type=int, default=None, help="hog processes (default: one per core)")
    ap.add_argument("--user-compile", action="store_true", help="time a user's torch.compile too")
    ap.add_argument("--no-peers", action="store_true", help="skip torchvision/timm/kornia")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 3 reps: checks it runs")
    ap.add_argument("--json", default=None, help="write the rows, goals and environment here")
    ap.add_argument("--quiet", action="store_true", help="print nothing")
    return ap.parse_args(argv)


def _images(args: argparse.Namespace, timer: Timer, device: torch.device, peer_names) -> list[Row]:
    rows: list[Row] = []
    for shape, dtype in SMOKE_SHAPES if args.smoke else SHAPES:
        _log(args, f"images {shape_str(shape, dtype)} ...")
        rows += suite.bench_images(
            timer,
            shape,
            dtype,
            device,
            peers=not args.no_peers,
            peer_names=peer_names,
            user_compile=args.user_compile,
            lean=args.load,
        )
    return rows


def _log(args: argparse.Namespace, msg: str) -> None:
    if not args.quiet:
        print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables (and write JSON with ``--json``). Returns 0."""
    args = _parse(argv)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks.run: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    threads = args.threads if args.threads is not None else (2 if args.load else 1)
    torch.set_num_threads(threads)
    reps = 3 if args.smoke else (args.reps or (5 if args.load else 21))
    budget = 0.2 if args.smoke else (args.budget or (1.5 if args.load else 4.0))
    warmup = 1 if args.smoke else (args.warmup or (1 if args.load else 2))
    timer = Timer(device, reps, warmup, budget)
    report: dict[str, Any] = {}
    if args.load:
        peer_names = (TORCHVISION, TIMM_ELEM)
        t0 = time.monotonic()
        quiet = _images(args, timer, device, peer_names)
        _log(args, f"quiet run: {time.monotonic() - t0:.0f} s; starting the hogs ...")
        with hogging(args.hogs, seconds=1800) as pids:
            _log(args, f"hogs running: {pids}")
            loaded = _images(args, timer, device, peer_names)
        _log(args, f"both runs: {time.monotonic() - t0:.0f} s")
        env = environment(device, torch.get_num_threads())
        env["hogs"] = len(pids)
        report = {"environment": env}
        for name, rows, is_loaded in (("Quiet", quiet, False), ("Loaded", loaded, True)):
            gs = load_goals(rows, loaded=is_loaded)
            report[name.lower()] = {"rows": [asdict(r) for r in rows], "goals": gs}
            if not args.quiet:
                print(
                    f"## {name} ({threads} intra-op threads"
                    + (f", {len(pids)} hogs)" if is_loaded else ")")
                )
                print()
                print(format_table(rows))
                print()
                print(format_goals(gs))
                print()
        if not args.quiet:
            print(json.dumps(env, indent=1))
    else:
        sections = {s.strip() for s in args.sections.split(",") if s.strip()}
        if args.smoke:
            target_sizes, train_n, ns, sides, n_fixed, side, sample_ns = (
                [(8, 100)],
                8,
                [2, 4],
                [16, 32],
                2,
                16,
                [4],
            )
        else:
            target_sizes = [(128, 1000), (128, 21843)]
            train_n, ns, sides, n_fixed, side = 128, [16, 32, 64, 128], [56, 112, 224, 448], 32, 224
            sample_ns = [4, 128, 256]
        rows: list[Row] = []
        if "sampling" in sections:
            _log(args, "sampling ...")
            rows += suite.bench_sampling(timer, device, sample_ns)
        if "images" in sections:
            rows += _images(args, timer, device, None)
        if "targets" in sections:
            for n, c in target_sizes:
                _log(args, f"targets N={n} C={c} ...")
                rows += suite.bench_targets(timer, n, c, device)
            if not args.smoke:
                n, c = target_sizes[-1]
                _log(args, f"targets N={n} C={c}, back to back ...")
                rows += suite.bench_targets(timer, n, c, device, repeat=5)
        if "train" in sections:
            _log(args, "train step ...")
            rows += suite.bench_train(timer, train_n, device, tiny=args.smoke)
        if "scaling" in sections:
            _log(args, "scaling ...")
            rows += suite.bench_scaling(timer, device, ns, sides, n_fixed, side)
        env = environment(device, torch.get_num_threads())
        syncs = suite.check_no_sync(device)
        gs = goals(rows)
        report = {
            "environment": env,
            "rows": [asdict(r) for r in rows],
            "goals": gs,
            "sync_checks": syncs,
        }
        if not args.quiet:
            print(json.dumps(env, indent=1))
            print(format_table(rows))
            print()
            print(format_goals(gs))
            print("sync checks:", syncs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
