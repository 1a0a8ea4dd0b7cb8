"""A module of the package as it was at an earlier commit, for before/after benchmarks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType


def module_at(commit: str, path: str, name: str) -> ModuleType:
    """Import ``path`` (e.g. ``src/cutmix/params.py``) as it was at ``commit`` (``git show``).

    Run inside the repository. The old module imports the current ``cutmix`` for everything else.
    """
    text = subprocess.run(
        ["git", "show", f"{commit}:{path}"], capture_output=True, text=True, check=True
    ).stdout
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(text)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
