"""The layout the README and CONTRIBUTING.md describe is the one on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = text.find("\n## ", start + len(heading))
    return text[start : following if following != -1 else None]


def _packages() -> list[Path]:
    tops = [p for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"]
    return sorted(
        sub
        for top in tops
        for sub in [top, *top.rglob("*")]
        if (sub / "__init__.py").exists() and "__pycache__" not in sub.parts
    )


@pytest.mark.parametrize("document", ["README.md", "CONTRIBUTING.md"])
def test_the_layout_names_every_package_and_nothing_that_is_gone(document: str) -> None:
    layout = _section((ROOT / document).read_text(encoding="utf-8"), "## Layout")
    for package in _packages():
        relative = package.relative_to(ROOT)
        if len(relative.parts) == 1:
            assert f"`{relative}/`" in layout, f"{document} does not name {relative}/"
        else:
            assert f"`{relative.name}/`" in layout or f"`{relative}/`" in layout, relative
    for named in ("bot/slack/", "bot/stores/", "bot/inference/"):
        assert named not in layout
