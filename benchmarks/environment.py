"""What the benchmark ran on: versions, CPU, allocator, huge pages, GPU; from /proc and /sys."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from typing import Any

import torch

import cutmix


def environment(device: torch.device, threads: int) -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    thp = "?"
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().strip()
    except OSError:
        pass
    maps = ""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        pass
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "?"
    alloc = [name for name in ("jemalloc", "tcmalloc", "mimalloc") if name in maps]
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("MALLOC_", "THP_", "LD_PRELOAD", "OMP_", "MKL_", "PYTORCH_"))
    }
    info: dict[str, Any] = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cutmix": cutmix.__version__,
        "device": str(device),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "allocator": ("+".join(alloc) if alloc else f"glibc malloc ({libc})"),
        "allocator_env": env,
        "transparent_hugepage": thp,
        "peers": {},
    }
    for mod in ("torchvision", "timm", "kornia"):
        try:
            info["peers"][mod] = __import__(mod).__version__
        except Exception:
            info["peers"][mod] = None
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        info["gpu"] = prop.name
        clock = getattr(prop, "memory_clock_rate", None)
        bus = getattr(prop, "memory_bus_width", None)
        if clock and bus:  # kHz and bits, double data rate
            info["gpu_peak_bandwidth_GBps"] = round(2 * clock * 1e3 * bus / 8 / 1e9)
    return info
