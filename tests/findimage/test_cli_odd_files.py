"""The command line before odd files and folders (issue 20): a bad query picture is one
sentence and exit 2, an incomplete run says so in its exit code, and --paths feeds pipes."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from findimage.cli import EXIT_INCOMPLETE
from tests.support.cli import FINDIMAGE, json_in_process, run_in_process
from tests.support.pictures import make_library
from tests.support.raw_files import truncated_dng


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str]) -> Path:
    root = tmp_path / "library"
    make_library(root, 6)
    return root


def test_a_truncated_raw_query_picture_is_one_sentence_and_exit_2(
    tmp_path: Path, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rawpy", reason="the raw extra is not installed")
    query = tmp_path / "card.dng"
    query.write_bytes(truncated_dng())
    code, out, err = run_in_process(capsys, "search", "--image", str(query))
    assert code == 2
    assert err.startswith(f"findimage: The picture {query} cannot be used: the picture is damaged")
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_a_fifo_as_query_picture_is_refused_without_waiting_on_it(
    tmp_path: Path, library: Path, findimage_env: dict[str, str]
) -> None:
    fifo = tmp_path / "query.jpg"
    os.mkfifo(fifo)
    # A child process: one that opened the FIFO for reading would wait for a writer forever.
    done = subprocess.run(
        [*FINDIMAGE, "search", "--image", str(fifo)],
        env={**os.environ, **findimage_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "not a regular file" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_run_that_could_not_read_a_folder_exits_3_and_keeps_its_pictures(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    json_in_process(capsys, "index", str(library))
    refused = library.resolve() / "trips"
    real_scandir = os.scandir

    def scandir(path: str | Path) -> object:
        # The kernel's answer for a folder without read permission (the suite also runs as
        # root, whom modes do not stop).
        if Path(path) == refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    with monkeypatch.context() as patched:
        patched.setattr(os, "scandir", scandir)
        code, out, _ = run_in_process(capsys, "index", str(library))
    assert code == EXIT_INCOMPLETE
    assert "removed 0" in out and "Incomplete" in out
    assert json_in_process(capsys, "index", str(library))["unchanged"] == 6


def test_search_paths_prints_absolute_paths_only(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = os.fsdecode(b"caf\xe9.png")
    (library / name).write_bytes(sorted(library.rglob("*.png"))[0].read_bytes())
    json_in_process(capsys, "index", str(library))
    for flag in ("--paths", "-f"):
        done = subprocess.run(
            [*FINDIMAGE, "search", "a red circle", "-k", "10", flag],
            env=os.environ,
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        lines = [os.fsdecode(line) for line in done.stdout.splitlines()]
        assert len(lines) == 7
        assert all(Path(line).is_absolute() and Path(line).is_file() for line in lines)
        assert str(library.resolve() / name) in lines


def test_index_replace_beside_a_running_writer_is_refused_naming_it(
    tmp_path: Path, library: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    other = tmp_path / "other"
    make_library(other, 3)
    holder_code = (
        "import sys; from pathlib import Path; "
        "from findimage.stores.embedded import EmbeddedStore; "
        "store = EmbeddedStore(Path(sys.argv[1]))\n"
        "with store.writing():\n"
        "    print('held', flush=True); sys.stdin.read()\n"
    )
    # Another process in the middle of a run: it holds the index's writer lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, findimage_env["FINDIMAGE_DATA_DIR"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, out, err = run_in_process(capsys, "index", str(other), "--replace")
    finally:
        holder.communicate("", timeout=60)
    assert code == 1 and out == ""
    assert f"(pid {holder.pid} on {socket.gethostname()}) is writing the index" in err
    assert len(err.strip().splitlines()) == 1
    search = json_in_process(capsys, "search", "a red circle", "-k", "20")["results"]
    assert len(search) == 6 and all((library / hit["path"]).is_file() for hit in search)
    # Once it is done, the same command goes through.
    report = json_in_process(capsys, "index", str(other), "--replace")
    assert report["indexed"] + report["unchanged"] == 3


def test_libraws_message_for_a_truncated_raw_stays_off_stderr(
    tmp_path: Path, library: Path, findimage_env: dict[str, str]
) -> None:
    """LibRaw prints "Unexpected end of file" on the C-level stderr, below Python; a child
    process shows what a terminal would (capsys sees only Python's sys.stderr)."""
    pytest.importorskip("rawpy", reason="the raw extra is not installed")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FINDIMAGE, *args],
            env={**os.environ, **findimage_env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    first = run("index", str(library))  # the model exported, its notice said, before the RAW
    assert first.returncode == 0, first.stderr
    (library / "card.dng").write_bytes(truncated_dng())
    done = run("index", str(library))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    skipped = [line for line in done.stdout.splitlines() if "card.dng" in line]
    assert len(skipped) == 1 and "damaged or truncated" in skipped[0], done.stdout
    query = run("search", "--image", str(library / "card.dng"))
    assert query.returncode == 2
    assert query.stderr.startswith(f"findimage: The picture {library / 'card.dng'} cannot be used")
    assert len(query.stderr.splitlines()) == 1, query.stderr
