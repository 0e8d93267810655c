"""A bot process searching while the indexer adds and removes pictures: no search fails, and
none returns a picture whose removal the index had committed before that search began."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from findimage.factory import build_indexer, build_store
from findimage.settings import load_settings
from tests.support.pictures import draw_shape, make_library, save
from tests.support.waiting import wait_until

ROUNDS = 8
SEARCHER = [sys.executable, "-m", "tests.support.search_while_changing"]
LIBRARY_SIZE = 30


def _runs(progress: Path) -> int:
    return int(progress.read_text() or 0) if progress.exists() else 0


@pytest.mark.slow  # a trial: child processes searching while an indexer runs, minutes
def test_searches_while_the_indexer_writes_and_deletes_fail_never_and_show_nothing_removed(
    tmp_path: Path, findimage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, LIBRARY_SIZE)
    monkeypatch.setenv("FINDIMAGE_ENGINE", "torch")  # no model export: the test is the index
    monkeypatch.setenv("FINDIMAGE_PRECISION", "fp32")
    settings = load_settings()
    store = build_store(settings)
    indexer = build_indexer(settings, store)
    assert indexer.run(library, progress=False).indexed == LIBRARY_SIZE

    progress, stop, gone_file = tmp_path / "progress", tmp_path / "stop", tmp_path / "gone.json"
    # k above everything the index will ever hold: every picture present is a hit.
    searcher = subprocess.Popen(
        [*SEARCHER, str(progress), str(stop), str(gone_file), str(LIBRARY_SIZE + 2 * ROUNDS)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _runs(progress) >= 1, 120, "the first search")
        gone: list[str] = []
        for round_number in range(ROUNDS):
            removed = pictures[3 * round_number : 3 * round_number + 3]
            for picture in removed:
                picture.unlink()
            save(
                draw_shape("red", "circle", offset=round_number),
                library / f"new-{round_number}.png",
            )
            save(
                draw_shape("blue", "square", offset=round_number),
                library / f"new-{round_number}.jpg",
            )
            report = indexer.run(library, progress=False)
            assert (report.indexed, report.deleted) == (2, 3)
            # Committed: from now on a search that starts must not show these.
            gone += [picture.relative_to(library).as_posix() for picture in removed]
            (tmp_path / "gone.tmp").write_text(json.dumps(gone))
            os.replace(tmp_path / "gone.tmp", gone_file)
            seen = _runs(progress)
            wait_until(lambda seen=seen: _runs(progress) >= seen + 2, 120, "two more searches")
    finally:
        stop.touch()
        out, _ = searcher.communicate(timeout=120)
        store.close()
    outcome = json.loads(out)
    assert outcome["errors"] == []
    assert outcome["stale"] == []
    assert outcome["runs"] > 2 * ROUNDS
