"""``import cutmix`` imports none of the integrated libraries; each module names its extra."""

from __future__ import annotations

import subprocess
import sys


def test_import_cutmix_imports_no_integration_library() -> None:
    code = (
        "import sys, cutmix, cutmix.integrations, cutmix.collate, cutmix.transforms\n"
        "heavy = ['timm', 'lightning', 'pytorch_lightning', 'transformers', 'torchvision',"
        " 'tensorboard']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
