from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.support.cli import FINDIMAGE, findimage_json
from tests.support.pictures import make_library


def _indexed_rows(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_index_killed_with_sigkill_resumes_without_loss_or_duplicates(
    tmp_path: Path, findimage_env: dict[str, str]
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, 120)
    env = {**findimage_env, "FINDIMAGE_BATCH_SIZE": "4", "FINDIMAGE_DECODE_WORKERS": "1"}
    database = Path(findimage_env["FINDIMAGE_DATA_DIR"]) / "index.sqlite3"

    child = subprocess.Popen(
        [*FINDIMAGE, "index", str(library), "--json"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it once some batches are committed and before it could have finished.
    deadline = time.monotonic() + 120
    while _indexed_rows(database) < 8 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    killed_at = _indexed_rows(database)
    assert 0 < killed_at < len(pictures), "the kill must land mid-run for this test to mean much"

    report = findimage_json("index", str(library), env=env, cwd=tmp_path)
    assert report["skipped"] == []
    assert report["unchanged"] == killed_at
    assert report["indexed"] == len(pictures) - killed_at

    with sqlite3.connect(database) as db:
        paths = [row[0] for row in db.execute("SELECT path FROM images")]
    assert len(paths) == len(set(paths)) == len(pictures)
    assert set(paths) == {p.relative_to(library).as_posix() for p in pictures}

    again = findimage_json("index", str(library), env=env, cwd=tmp_path)
    assert (again["indexed"], again["unchanged"]) == (0, len(pictures))
