"""A running watcher re-reads the index's models before writing (issue 20, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import json_in_process
from tests.support.other_models import watcher_meets_a_rebuild_with_other_models


def test_a_watcher_writes_nothing_into_an_index_rebuilt_with_other_models(
    es_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    other_clip: Path,
) -> None:
    def rebuild(library: Path) -> None:
        assert json_in_process(capsys, "index", "--rebuild", str(library))["indexed"] == 3

    paths, warning, search_sentence = watcher_meets_a_rebuild_with_other_models(
        tmp_path, other_clip, capsys, caplog, monkeypatch, rebuild
    )

    assert "added.png" not in paths
    assert len(paths) == 3
    assert search_sentence in warning
