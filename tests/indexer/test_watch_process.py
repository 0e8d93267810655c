"""`findimage index --watch` as a user runs it: killed with SIGKILL in the middle of following
the library, then started again, it loses nothing; Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import threading
from contextlib import closing
from pathlib import Path

from tests.support.cli import FINDIMAGE
from tests.support.pictures import draw_shape, gradient, make_library, save
from tests.support.waiting import CEILING_SECONDS, wait_until
from tests.support.watching import indexed_paths


def _start(library: Path, env: dict[str, str]) -> tuple[subprocess.Popen, queue.Queue[str]]:
    process = subprocess.Popen(
        [*FINDIMAGE, "index", "--watch", str(library)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def _wait_for_line(lines: queue.Queue[str], text: str) -> str:
    while True:
        line = lines.get(timeout=CEILING_SECONDS)
        if text in line:
            return line


def _add(library: Path, first: int, count: int) -> set[str]:
    added = set()
    for number in range(first, first + count):
        picture = draw_shape("purple", "square", size=(60 + number % 30, 64))
        picture.paste(gradient((12, 12), seed=number), (0, 0))
        save(picture, library / "incoming" / f"{number:03d}.png")
        added.add(f"incoming/{number:03d}.png")
    return added


def test_a_killed_watcher_started_again_loses_nothing(
    findimage_env: dict[str, str], tmp_path: Path
) -> None:
    library = tmp_path / "library"
    data_dir = Path(findimage_env["FINDIMAGE_DATA_DIR"])
    expected = {path.relative_to(library).as_posix() for path in make_library(library, 8)}

    process, lines = _start(library, findimage_env)
    _wait_for_line(lines, "Indexed 8, removed 0, skipped 0.")
    expected |= _add(library, 0, 40)
    wait_until(lambda: len(indexed_paths(data_dir)) > 8, CEILING_SECONDS, "the first new pictures")
    process.send_signal(signal.SIGKILL)
    process.wait(CEILING_SECONDS)

    # While no watcher runs, the library keeps changing.
    expected |= _add(library, 40, 10)
    (library / "incoming" / "000.png").unlink()
    expected.discard("incoming/000.png")

    process, lines = _start(library, findimage_env)
    _wait_for_line(lines, "Indexed ")  # its catch-up run's line
    wait_until(
        lambda: set(indexed_paths(data_dir)) == expected, CEILING_SECONDS, "every picture, once"
    )
    indexed = indexed_paths(data_dir)
    assert len(indexed) == len(set(indexed)) == len(expected)
    with closing(sqlite3.connect(data_dir / "index.sqlite3")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    process.send_signal(signal.SIGINT)
    code = process.wait(CEILING_SECONDS)
    said = []
    while not lines.empty():
        said.append(lines.get())
    # Ctrl-C between runs stops the watcher; one that lands in a run (twice in about ten
    # suite runs, after the catch-up's line, under load) interrupts that run, whose rest the
    # next start does. Either way one line, no traceback.
    last_line = {
        0: "findimage: stopped watching.\n",
        130: "findimage: interrupted; run the same command again to carry on.\n",
    }
    assert code in last_line and last_line[code] in said, (code, said)
    assert not any("Traceback" in line for line in said)
