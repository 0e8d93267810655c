"""A hostile disk under `findimage index`: full (a file-size limit in the child process, as
`ulimit -f` sets it), the index locked by another writer, or the data dir read-only. One
plain sentence, an index SQLite still finds intact, and the next run after the cause is gone
completes."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.support.cli import FINDIMAGE, findimage, findimage_json
from tests.support.pictures import draw_shape, make_library, save

LIMIT_BYTES = 96 * 1024  # room for the schema and a few batches of vectors, not for all


def _limited() -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, as on a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_BYTES, LIMIT_BYTES))


@pytest.mark.slow
def test_a_full_disk_is_one_sentence_and_the_next_run_completes(
    tmp_path: Path, findimage_env: dict[str, str]
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, 160)
    # PyTorch writes no file to load its model, so the only writes the limit can stop are the
    # index's own (an ONNX export of the model would write into the data dir first).
    findimage_env = {**findimage_env, "FINDIMAGE_ENGINE": "torch", "FINDIMAGE_PRECISION": "fp32"}
    env = {**os.environ, **findimage_env, "FINDIMAGE_BATCH_SIZE": "8"}
    database = Path(findimage_env["FINDIMAGE_DATA_DIR"]) / "index.sqlite3"

    full = subprocess.run(
        [*FINDIMAGE, "index", str(library)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited,
        check=False,
    )
    assert full.returncode != 0, full.stdout
    assert "Traceback" not in full.stderr
    [sentence] = [line for line in full.stderr.splitlines() if line.startswith("findimage: ")]
    assert "Cannot write the index" in sentence and "the disk may be full" in sentence, sentence
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    assert kept < len(pictures)

    report = findimage_json("index", str(library), env=findimage_env, cwd=tmp_path)
    assert report["skipped"] == []
    assert report["indexed"] + report["unchanged"] == len(pictures)
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(DISTINCT path) FROM images").fetchone()[0] == len(pictures)


@pytest.mark.slow  # SQLite waits its whole busy timeout (30 s) for the other writer
def test_an_index_locked_by_another_writer_is_one_sentence_and_the_next_run_completes(
    tmp_path: Path, findimage_env: dict[str, str]
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, 24)
    database = Path(findimage_env["FINDIMAGE_DATA_DIR"]) / "index.sqlite3"
    first = findimage_json("index", str(library), env=findimage_env, cwd=tmp_path)
    assert first["indexed"] == len(pictures)
    added = make_library(library / "new", 8)

    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        locked = findimage("index", str(library), env=findimage_env, cwd=tmp_path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert locked.returncode != 0
    assert "Traceback" not in locked.stderr
    [sentence] = [line for line in locked.stderr.splitlines() if line.startswith("findimage: ")]
    assert "another program holds it: wait for it to finish" in sentence, sentence

    report = findimage_json("index", str(library), env=findimage_env, cwd=tmp_path)
    assert report["indexed"] == len(added)
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total = db.execute("SELECT COUNT(DISTINCT path) FROM images").fetchone()[0]
    assert total == len(pictures) + len(added)


@contextmanager
def _mounted_tmpfs(folder: Path) -> Iterator[Callable[[str], None]]:
    """A small tmpfs at `folder`, and a way to remount it ("ro" or "rw"). The tests run as
    root, whom file modes do not stop: only a read-only file system does."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a file system here: {mounted.stderr.strip()}")

    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)

    try:
        yield remount
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow  # a trial: five `findimage` runs in child processes on a tmpfs
def test_a_read_only_data_dir_is_read_and_one_sentence_to_index_and_the_next_run_completes(
    tmp_path: Path, findimage_env: dict[str, str]
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, 6)
    env = {**findimage_env, "FINDIMAGE_ENGINE": "torch", "FINDIMAGE_PRECISION": "fp32"}
    data_dir = Path(env["FINDIMAGE_DATA_DIR"])
    with _mounted_tmpfs(data_dir) as remount:
        assert findimage_json("index", str(library), env=env, cwd=tmp_path)["indexed"] == 6
        remount("ro")
        save(draw_shape("red", "square"), library / "added.png")
        done = findimage("index", str(library), env=env, cwd=tmp_path)
        assert done.returncode != 0, done.stdout
        assert "Traceback" not in done.stderr
        [sentence] = [line for line in done.stderr.splitlines() if line.strip()]
        assert "FINDIMAGE_DATA_DIR can be written" in sentence, sentence
        # Reading needs no write access (issue 20, item 15): search and status answer.
        assert len(findimage_json("search", "red square", env=env, cwd=tmp_path)["results"]) > 0
        assert findimage_json("status", env=env, cwd=tmp_path)["count"] == 6
        remount("rw")
        report = findimage_json("index", str(library), env=env, cwd=tmp_path)
        assert (report["indexed"], report["unchanged"]) == (1, len(pictures))
        with closing(sqlite3.connect(data_dir / "index.sqlite3")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
