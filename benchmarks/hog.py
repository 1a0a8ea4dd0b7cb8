"""A CPU load for the "loaded" benchmarks: small training steps in a loop, one process per core.

What a training job's neighbours do to it: DataLoader workers decoding beside the training
process, or other jobs on a shared host. Each hog process runs, with one intra-op thread, SGD steps
of a small conv net on a random batch (a forward, a backward and an update: conv, matmul,
elementwise and reduction kernels, about 10 ms a step) until it is stopped or ``--seconds`` have
passed. The OS then time-slices every core between the hogs and the benchmark, so a parallel op
of the benchmark waits at its barrier whenever one of its threads has been descheduled.

``python -m benchmarks.hog [--procs N] [--seconds S]`` runs N hogs (default: one per core) in the
foreground; the benchmark runner (``python -m benchmarks.run --load``) starts and stops them with
:func:`hogging`.

Example:
    >>> from benchmarks.hog import hogging
    >>> with hogging(procs=1, seconds=5) as pids:
    ...     len(pids)
    1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator


def step_loop(seconds: float, parent: int | None = None) -> int:
    """Train a small conv net on random data for ``seconds`` (or until SIGTERM); returns steps.

    With ``parent``: also stop as soon as that process is gone (killed without cleaning up).
    """
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(os.getpid())
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(256, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(16, 3, 32, 32)
    y = torch.randint(0, 10, (16,))
    end = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < end:
        if parent is not None and os.getppid() != parent:
            break  # the runner died (re-parented): stop hogging a shared machine
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        steps += 1
    return steps


@contextlib.contextmanager
def hogging(procs: int | None = None, seconds: float = 900.0) -> Iterator[list[int]]:
    """Run ``procs`` hog processes (default: one per core) for the duration of the block.

    Each is terminated when the block exits, and stops by itself after ``seconds`` or when this
    process is gone (killed without cleaning up). Yields their process ids once every hog has started its loop.
    """
    n = procs if procs is not None else (os.cpu_count() or 1)
    cmd = [sys.executable, "-m", "benchmarks.hog", "--worker", "--seconds", str(seconds)]
    cmd += ["--parent", str(os.getpid())]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    started = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for _ in range(max(0, n))
    ]
    try:
        for p in started:  # each prints a line once torch is imported and its loop begins
            assert p.stdout is not None
            p.stdout.readline()
        yield [p.pid for p in started]
    finally:
        for p in started:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in started:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, default=None, help="hog processes (default: one per core)")
    ap.add_argument("--seconds", type=float, default=900.0, help="stop after this long")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        import torch  # noqa: F401  (imported before the ready line: startup is not load)

        print("ready", flush=True)
        step_loop(args.seconds, args.parent)
        return 0
    with hogging(args.procs, args.seconds) as pids:
        print(f"hogging with {len(pids)} processes: {pids}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
