"""``import cutmix`` imports none of the integrated libraries; each module names its extra."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_import_cutmix_imports_no_integration_library() -> None:
    code = (
        "import sys, cutmix, cutmix.integrations, cutmix.collate, cutmix.transforms\n"
        "heavy = ['timm', 'lightning', 'pytorch_lightning', 'transformers', 'torchvision',"
        " 'tensorboard']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("timm", ["timm"], "timm"),
        ("torchvision", ["torchvision"], "torchvision"),
        ("transformers", ["transformers"], "transformers"),
        ("lightning", ["lightning", "pytorch_lightning"], "lightning"),
    ],
)
def test_missing_library_names_its_extra(
    module: str, blocked: list, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    for b in blocked:
        monkeypatch.setitem(sys.modules, b, None)
    monkeypatch.delitem(sys.modules, f"cutmix.integrations.{module}", raising=False)
    with pytest.raises(ImportError, match=rf"cutmix\[{extra}\]"):
        importlib.import_module(f"cutmix.integrations.{module}")
