"""`findimage index` killed with SIGKILL again and again, then run to the end: the index holds
exactly the good pictures once each, on the embedded store (whose SQLite integrity check
passes after every kill) and on Elasticsearch (the emulator)."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.cli import findimage_json
from tests.support.es_emulator import ElasticsearchEmulator
from tests.support.forked_cli import ForkingCli
from tests.support.pictures import make_library

KILLS = 20
BAD_FILES = 12


def _rows(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _integrity(database: Path) -> str:
    with sqlite3.connect(database, timeout=30) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


class EmbeddedIndex:
    def __init__(self, data_dir: Path):
        self.database = data_dir / "index.sqlite3"
        self.env: dict[str, str] = {}

    def count(self) -> int:
        return _rows(self.database)

    def check(self) -> None:
        assert _integrity(self.database) == "ok"

    def paths(self) -> list[str]:
        with closing(sqlite3.connect(self.database)) as db:
            return [row[0] for row in db.execute("SELECT path FROM images")]


class ElasticsearchIndex:
    def __init__(self, cluster: ElasticsearchEmulator):
        self._cluster = cluster
        self.env = {"FINDIMAGE_BACKEND": "elasticsearch", "FINDIMAGE_ES_URL": cluster.url}

    def count(self) -> int:
        # Written documents, refreshed or not: a kill may land before the run's refresh.
        return len(self._cluster.stored_paths())

    def check(self) -> None:
        """Nothing to check between kills: the cluster keeps its own files."""

    def paths(self) -> list[str]:
        return self._cluster.stored_paths()


@pytest.fixture(params=["embedded", "elasticsearch"])
def index(
    request: pytest.FixtureRequest, findimage_env: dict[str, str]
) -> Iterator[EmbeddedIndex | ElasticsearchIndex]:
    if request.param == "embedded":
        yield EmbeddedIndex(Path(findimage_env["FINDIMAGE_DATA_DIR"]))
        return
    with ElasticsearchEmulator() as cluster:
        yield ElasticsearchIndex(cluster)


@pytest.mark.slow
def test_twenty_sigkills_then_a_full_run_leave_every_good_picture_once(
    tmp_path: Path, findimage_env: dict[str, str], index: EmbeddedIndex | ElasticsearchIndex
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, 160)
    for number in range(BAD_FILES):
        (library / f"broken-{number:02d}.jpg").write_bytes(os.urandom(64 * (number + 1)))
    # On PyTorch, batches of 2 commit slowly enough that each kill lands mid-run; the ONNX
    # engine indexes this small library in fewer rounds than there are kills to make.
    env = {
        **findimage_env,
        "FINDIMAGE_BATCH_SIZE": "2",
        "FINDIMAGE_DECODE_WORKERS": "1",
        "FINDIMAGE_ENGINE": "torch",
        "FINDIMAGE_PRECISION": "fp32",
        **index.env,
    }
    chance = random.Random(12)
    kills = 0
    # Each run a forked child of one process that imported findimage once (the imports are
    # most of a fresh interpreter's start): the real command line, killed for real.
    with ForkingCli(env={**os.environ, **env}, cwd=tmp_path) as forking:
        for _ in range(KILLS):
            before = index.count()
            # Kill after a random amount of progress: 1 to 3 more committed batches.
            target = before + 2 * chance.randint(1, 3)
            child = forking.start(["index", str(library)])
            deadline = time.monotonic() + 120
            while index.count() < target and child.poll() is None:
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.01)  # polling the condition (rows committed), not waiting for time
            if child.poll() is None:
                child.kill()
                kills += 1
            child.wait(timeout=30)
            index.check()
            if index.count() == len(pictures):
                break
    assert kills >= KILLS * 3 // 4, f"only {kills} kills landed mid-run"

    report = findimage_json("index", str(library), env=env, cwd=tmp_path)
    assert sorted(item["path"] for item in report["skipped"]) == [
        f"broken-{number:02d}.jpg" for number in range(BAD_FILES)
    ]
    assert all("not a picture" in item["reason"] for item in report["skipped"])
    paths = index.paths()
    assert len(paths) == len(set(paths)) == len(pictures)
    assert set(paths) == {p.relative_to(library).as_posix() for p in pictures}
    index.check()
