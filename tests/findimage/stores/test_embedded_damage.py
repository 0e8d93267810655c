"""A damaged embedded index has a way out (issue 20, item 15): every command says it is
damaged and what to run; `findimage index` moves it aside and builds it again; a damaged
vector is left out of searches and embedded again by the next run; reading needs neither
write access nor room on the disk."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.support.cli import json_in_process, run_in_process
from tests.support.pictures import make_library

PICTURES = 4
ADVICE = "run `findimage index` to move it aside and build it again"


@pytest.fixture
def indexed(findimage_env: dict[str, str], tmp_path: Path, capsys) -> Path:
    """An indexed library; returns the index file."""
    library = tmp_path / "library"
    make_library(library, PICTURES)
    assert json_in_process(capsys, "index", str(library))["indexed"] == PICTURES
    return Path(findimage_env["FINDIMAGE_DATA_DIR"]) / "index.sqlite3"


def _not_a_database(database: Path) -> None:
    database.write_bytes(b"these bytes are not SQLite's " * 200)


def _garbled_pages(database: Path) -> None:
    """SQLite's header kept, its pages overwritten: "database disk image is malformed"."""
    data = bytearray(database.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page + 100 : len(data)] = bytes([0xA5]) * (len(data) - page - 100)
    database.write_bytes(bytes(data))


def _models_record(database: Path) -> None:
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE meta SET value = '{\"image_model\": ' WHERE key = 'models'")


DAMAGES: dict[str, Callable[[Path], None]] = {
    "not a database": _not_a_database,
    "garbled pages": _garbled_pages,
    "models record": _models_record,
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_index_is_named_by_every_command_and_rebuilt_by_index(
    indexed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    DAMAGES[damage](indexed)

    for args in (("search", "red circle"), ("status",), ("search", "--like", "abcd1234")):
        code, _, err = run_in_process(capsys, *args)
        assert code != 0, args
        assert f"The index at {indexed} is damaged" in err, args
        assert ADVICE in err, args
        assert "unexpected" not in err, args

    report = json_in_process(capsys, "index", str(tmp_path / "library"))

    assert report["indexed"] == PICTURES
    aside = [p.name for p in indexed.parent.glob("index.sqlite3.corrupt-*")]
    assert len([name for name in aside if not name.endswith("-wal")]) == 1
    assert json_in_process(capsys, "status")["count"] == PICTURES
    assert len(json_in_process(capsys, "search", "red circle", "-k", "2")["results"]) == 2


def test_a_damaged_vector_is_left_out_of_searches_and_embedded_again(
    indexed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with closing(sqlite3.connect(indexed)) as db, db:
        [(doc_id, path)] = db.execute("SELECT id, path FROM images ORDER BY path LIMIT 1")
        db.execute("UPDATE images SET vector = ? WHERE id = ?", (b"\x01\x02\x03", doc_id))

    found = json_in_process(capsys, "search", "red circle", "-k", str(PICTURES))["results"]
    assert sorted(hit["path"] for hit in found) == sorted(
        p for p in _indexed_paths(indexed) if p != path
    )

    report = json_in_process(capsys, "index", str(tmp_path / "library"))

    assert (report["indexed"], report["unchanged"]) == (1, PICTURES - 1)
    found = json_in_process(capsys, "search", "red circle", "-k", str(PICTURES))["results"]
    assert len(found) == PICTURES
    assert json_in_process(capsys, "search", "--like", doc_id, "-k", "1")["results"]


def _indexed_paths(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as db:
        return [row[0] for row in db.execute("SELECT path FROM images")]


@contextmanager
def _immutable(*paths: Path) -> Iterator[None]:
    """Nothing can be written or created there (chattr +i: even root cannot), as on a
    read-only mount or a full disk."""
    done = []
    try:
        for path in paths:
            if subprocess.run(["chattr", "+i", str(path)], check=False).returncode != 0:
                pytest.skip("chattr +i is not permitted here")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=False)


def test_search_and_status_read_an_index_that_cannot_be_written(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in indexed.parent.iterdir())
    content = indexed.read_bytes()
    with _immutable(indexed, indexed.parent):
        assert json_in_process(capsys, "status")["count"] == PICTURES
        found = json_in_process(capsys, "search", "red circle", "-k", "2")["results"]
    assert len(found) == 2
    assert sorted(p.name for p in indexed.parent.iterdir()) == before
    assert indexed.read_bytes() == content
