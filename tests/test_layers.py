"""The one-way layers of docs/ARCHITECTURE.md hold: the import-linter contract in pyproject.toml."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    if exe is None:
        pytest.skip("import-linter is not installed (pip install 'cutmix[test]')")
    return exe


def _run(exe: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [exe, "--no-logo", "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_layers_contract_is_kept() -> None:
    res = _run(_lint_imports(), ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "One-way layers KEPT" in res.stdout


def test_contract_catches_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    """A lazy import of a higher layer (the old way to dodge a cycle) breaks the contract."""
    exe = _lint_imports()
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    validate = tmp_path / "src" / "cutmix" / "_validate.py"
    validate.write_text(
        validate.read_text()
        + "\n\ndef _probe() -> None:\n    from cutmix.params import MixParams\n"
    )
    res = _run(exe, tmp_path)
    assert res.returncode != 0
    assert "cutmix._validate is not allowed to import cutmix.params" in res.stdout


def test_validate_imports_nothing_of_cutmix() -> None:
    """The bottom layer, checked without import-linter too (also TYPE_CHECKING imports)."""
    tree = ast.parse((ROOT / "src" / "cutmix" / "_validate.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m == "cutmix" or m.startswith("cutmix.")]


def _library_modules() -> list[Path]:
    """The library below its users: all but cli, __main__, bench, __init__, train/, integrations/."""
    pkg = ROOT / "src" / "cutmix"
    upper = {pkg / "cli.py", pkg / "__main__.py", pkg / "bench.py", pkg / "__init__.py"}
    users = {pkg / "train", pkg / "integrations"}
    return [
        f for f in sorted(pkg.rglob("*.py")) if f not in upper and not users.intersection(f.parents)
    ]


def test_library_never_imports_the_root_package_names() -> None:
    """``import cutmix`` or ``from cutmix import CutMix`` below the tool would hide a cycle through
    cutmix/__init__.py (outside the contract's layers); submodule imports are fine."""
    pkg = ROOT / "src" / "cutmix"
    submodules = {f.stem for f in pkg.glob("*.py")} | {d.name for d in pkg.iterdir() if d.is_dir()}
    bad = []
    for f in _library_modules():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import) and any(a.name == "cutmix" for a in node.names):
                bad.append(f"{f.name}:{node.lineno} import cutmix")
            if isinstance(node, ast.ImportFrom) and node.module == "cutmix" and node.level == 0:
                names = [a.name for a in node.names if a.name not in submodules]
                if names:
                    bad.append(f"{f.name}:{node.lineno} from cutmix import {names}")
    assert len(_library_modules()) > 10
    assert bad == []


def test_root_package_never_imports_its_users() -> None:
    """``import cutmix`` stays light and acyclic: the training tool, the CLI, bench and the
    integrations (which may ``import cutmix``) are never imported by cutmix/__init__.py."""
    tree = ast.parse((ROOT / "src" / "cutmix" / "__init__.py").read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:
            imported += [n.module] + [f"{n.module}.{a.name}" for a in n.names]
    users = ("cutmix.train", "cutmix.cli", "cutmix.bench", "cutmix.integrations")
    assert "cutmix.functional" in imported
    assert not [m for m in imported if m.startswith(users)]
