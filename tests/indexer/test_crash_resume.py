"""A `findimage index` killed with SIGKILL mid-run loses nothing that it committed.

The run is killed as soon as its first batches are committed: the library is large enough
that it cannot have finished by then on any machine, and what was committed is read once
it is dead, as the next run finds it. (A named pipe in the library used to hold
the run at a known place; since issue 20 the indexer skips FIFOs without opening them.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.support.cli import FINDIMAGE, findimage_json
from tests.support.pictures import make_library
from tests.support.waiting import wait_until

BATCH_SIZE = 4


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
    pictures = make_library(library, 400)
    first_batches = 2 * BATCH_SIZE

    env = {
        **findimage_env,
        "FINDIMAGE_BATCH_SIZE": str(BATCH_SIZE),
        "FINDIMAGE_DECODE_WORKERS": "1",
    }
    database = Path(findimage_env["FINDIMAGE_DATA_DIR"]) / "index.sqlite3"
    child = subprocess.Popen(
        [*FINDIMAGE, "index", str(library), "--json"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: _indexed_rows(database) >= first_batches or child.poll() is not None,
            timeout=240,
            what="the first batches to be committed",
        )
    finally:
        # Harmless when the child has already ended: Popen does not signal a reaped process.
        child.send_signal(signal.SIGKILL)
        _, errors = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, f"the run ended before the kill: {errors}"
    killed_at = _indexed_rows(database)
    assert first_batches <= killed_at < len(pictures)

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
