"""A lock on a run folder while a run writes it, and the cleaning of temp files left by killed runs.

The lock is a file ``.cutmix.lock`` holding ``{"pid", "host", "started"}``, created atomically (written
to a private temp file, then hard-linked into place, so it never exists half-written). A second run
on the same folder gets a :class:`UsageError` naming the lock. A lock whose process is gone (same host,
pid not running) is stale: it is taken over with a warning. A lock from another host cannot be checked
and is never taken over.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with RunLock(d):
    ...     RunLock(d).acquire()
    Traceback (most recent call last):
    ...
    cutmix.train.errors.UsageError: ...
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cutmix.train.errors import UsageError

__all__ = ["LOCK_NAME", "RunLock", "clean_temp_files", "pid_alive"]

LOCK_NAME = ".cutmix.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _started_after(pid: int, t: float) -> bool:
    """Whether process ``pid`` started after time ``t`` (a reused pid), where Linux can tell."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(s.split()[1]) for s in f if s.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK") > t + 2.0
    except (OSError, ValueError, IndexError, StopIteration):
        return False


class RunLock:
    """Hold ``folder/.cutmix.lock`` while a run writes ``folder`` (a context manager)."""

    def __init__(self, folder: str | Path, log: Any = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.held = False
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def _owner(self) -> dict[str, Any] | None:
        try:
            d = json.loads(self.path.read_text())
            return d if isinstance(d, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _link(self) -> bool:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".cutmix.lock.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                return False
            except OSError:  # no hard links on this file system: exclusive create instead
                try:
                    fd2 = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(fd2, "w") as f:
                    json.dump(me, f)
            return True
        finally:
            os.unlink(tmp)

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._link():
                self.held = True
                return self
            owner = self._owner()
            if owner is None:  # released in between: try again
                continue
            pid, host = owner.get("pid"), owner.get("host")
            same_host = host == socket.gethostname()
            started = owner.get("started")
            reused = (
                isinstance(started, (int, float)) and _started_after(pid, started)
                if isinstance(pid, int)
                else False
            )
            if (
                same_host
                and isinstance(pid, int)
                and pid != os.getpid()
                and (not pid_alive(pid) or reused)
            ):
                self.log(
                    f"warning: taking over the stale lock {self.path} of process {pid} on {host} "
                    f"({'its pid now belongs to a newer process' if reused else 'it is no longer running'})"
                )
                self.path.unlink(missing_ok=True)
                continue
            who = f"process {pid} on host {host}" if owner else "an unknown process"
            raise UsageError(
                f"out: expected a run folder no other run is writing, got {str(self.folder)!r} locked by "
                f"{who} (lock file {self.path}; if that run is dead, remove the lock file)"
            )
        raise UsageError(
            f"out: expected to lock {str(self.folder)!r}, got a lock that keeps changing"
        )

    def release(self) -> None:
        if self.held:
            self.held = False
            owner = self._owner()
            if owner and owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def clean_temp_files(folder: str | Path, names: tuple[str, ...] = ("last.pt",)) -> list[Path]:
    """Remove ``.<name>.tmp<pid>`` files that killed writers left in ``folder`` (call with the lock held)."""
    removed = []
    for name in names:
        for p in Path(folder).glob(f".{name}.tmp*"):
            if p.name == f".{name}.tmp{os.getpid()}":
                continue  # ours (the lock means no other run writes here)
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
