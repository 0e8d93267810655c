"""`findimage index --watch lib | head -1`, and the one-shot commands piped the same way
(issue 20, item 16): a reader that goes away ends the command quietly, with the status a
shell gives a command that SIGPIPE ended, as other command-line tools do."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.cli import FINDIMAGE
from tests.support.pictures import make_library
from tests.support.waiting import CEILING_SECONDS
from tests.support.watching import new_picture


def _started(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*FINDIMAGE, *args],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_watcher_whose_reader_goes_away_after_one_line_ends_quietly(
    findimage_env: dict[str, str], tmp_path: Path
) -> None:
    """`| head -1`: the catch-up line is read, then the reader goes; the next burst's line
    finds the pipe closed."""
    library = tmp_path / "library"
    make_library(library, 3)
    # A picture added between the catch-up and the start of the watching is found by the
    # next rescan: the shortest one keeps the test from depending on that moment.
    env = {**findimage_env, "FINDIMAGE_WATCH_RESCAN_SECONDS": "5"}
    child = _started(["index", "--watch", str(library)], env, tmp_path)
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    assert b"Indexed 3, removed 0, skipped 0." in first
    child.stdout.close()  # head -1 has its line and exits
    new_picture(1).save(library / "added.png")
    try:
        code = child.wait(timeout=CEILING_SECONDS)
    finally:
        child.kill()
    err = child.stderr.read().decode()
    assert code == 128 + signal.SIGPIPE, err
    assert "Traceback" not in err and "Error" not in err and "Exception" not in err, err
    assert f"findimage: watching {library}; Ctrl-C stops." in err.splitlines()


def test_a_watcher_whose_reader_is_gone_before_the_first_line_ends_quietly(
    findimage_env: dict[str, str], tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 3)
    child = _started(["index", "--watch", str(library)], findimage_env, tmp_path)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    try:
        code = child.wait(timeout=CEILING_SECONDS)
    finally:
        child.kill()
    err = child.stderr.read().decode()
    assert code == 128 + signal.SIGPIPE, err
    assert "Traceback" not in err and "Error" not in err and "Exception" not in err, err


def test_index_whose_reader_is_gone_ends_quietly(
    findimage_env: dict[str, str], tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 3)
    child = _started(["index", str(library)], findimage_env, tmp_path)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=CEILING_SECONDS) == 128 + signal.SIGPIPE, err
    assert "Traceback" not in err and "Error" not in err and "Exception" not in err, err
