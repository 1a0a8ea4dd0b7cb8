"""Every ```python block of docs/integrations.md runs (tiny sizes); ``# needs:`` names its packages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_section_has_a_snippet() -> None:
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("code", BLOCKS, ids=[f"snippet{i}" for i in range(len(BLOCKS))])
def test_snippet_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs = re.match(r"# needs: (.*)\n", code)
    for name in needs.group(1).split(",") if needs else []:
        pytest.importorskip(name.strip())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exec(compile(code, f"{DOC.name}:snippet", "exec"), {"__name__": "__snippet__"})
