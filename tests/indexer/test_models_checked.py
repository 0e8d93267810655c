"""A running watcher re-reads the index's models before writing (issue 20, item 2), on the
embedded store: an index deleted and made again with other models is not written to with
the watcher's own, nor is the deleted file written on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import json_in_process
from tests.support.other_models import watcher_meets_a_rebuild_with_other_models


def test_a_watcher_writes_nothing_into_an_index_made_again_with_other_models(
    findimage_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    other_clip: Path,
) -> None:
    def rebuild(library: Path) -> None:
        # What the command line tells people to do to rebuild the embedded index.
        shutil.rmtree(findimage_env["FINDIMAGE_DATA_DIR"])
        assert json_in_process(capsys, "index", str(library))["indexed"] == 3

    paths, warning, search_sentence = watcher_meets_a_rebuild_with_other_models(
        tmp_path, other_clip, capsys, caplog, monkeypatch, rebuild
    )

    assert "added.png" not in paths
    assert len(paths) == 3
    assert search_sentence in warning
