"""`findimage serve --watch`: the bot keeps the index in line with the library beside
answering, and stops its watcher with itself."""

from __future__ import annotations

import fcntl
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.support.pictures import make_library, save
from tests.support.serve_process import pump_stderr
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_requests import SIGNING_SECRET
from tests.support.waiting import CEILING_SECONDS, wait_until
from tests.support.watching import indexed_paths, new_picture


def _serve_env(
    findimage_env: dict[str, str], fake_slack: FakeSlack, library: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINDIMAGE_", "SLACK_"))}
    env.update(
        findimage_env,
        FINDIMAGE_LIBRARY=str(library),
        FINDIMAGE_PORT="0",
        FINDIMAGE_SLACK_API_URL=fake_slack.api_url,
        FINDIMAGE_WATCH_DEBOUNCE_MS="200",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
    )
    return env


def _serve_watch(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, queue.Queue[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "findimage.cli", "serve", "--watch", "-v", "--host", "127.0.0.1"],
        env=env,
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_stderr, args=(process, lines), daemon=True).start()
    return process, lines


def _said(lines: queue.Queue[str]) -> str:
    said = []
    while not lines.empty():
        said.append(lines.get())
    return "".join(said)


def test_serve_watch_indexes_what_is_copied_in_and_stops_with_the_bot(
    findimage_env: dict[str, str], fake_slack: FakeSlack, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 3)
    data_dir = Path(findimage_env["FINDIMAGE_DATA_DIR"])
    process, lines = _serve_watch(_serve_env(findimage_env, fake_slack, library), tmp_path)
    try:
        wait_until(lambda: len(indexed_paths(data_dir)) == 3, CEILING_SECONDS, "the catch-up run")
        save(new_picture(11), library / "dropped" / "in.png")
        wait_until(
            lambda: "dropped/in.png" in indexed_paths(data_dir), CEILING_SECONDS, "the new picture"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(CEILING_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    log = _said(lines)
    assert "watch: Indexed 1, removed 0, skipped 0" in log, log
    assert "Traceback" not in log, log


def test_serve_watch_retries_a_first_run_that_failed_and_then_watches(
    findimage_env: dict[str, str], fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Another program writing the index when the bot starts (here: the test holds the
    indexing runs' lock, as a `findimage index` in progress does) refuses the watcher's
    first run. Before: the watching was over for good, the pictures never indexed."""
    library = tmp_path / "library"
    make_library(library, 3)
    data_dir = Path(findimage_env["FINDIMAGE_DATA_DIR"])
    data_dir.mkdir(parents=True)
    lock = os.open(data_dir / "index.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.write(lock, f"{os.getpid()} elsewhere\n".encode())
    process, lines = _serve_watch(_serve_env(findimage_env, fake_slack, library), tmp_path)
    said: list[str] = []

    def warned() -> bool:
        while not lines.empty():
            said.append(lines.get())
        return any("the first run failed" in line for line in said)

    try:
        wait_until(warned, CEILING_SECONDS, "the first run's failure")
        os.close(lock)  # the other run is over
        wait_until(lambda: len(indexed_paths(data_dir)) == 3, CEILING_SECONDS, "the catch-up run")
        save(new_picture(12), library / "dropped" / "in.png")
        wait_until(
            lambda: "dropped/in.png" in indexed_paths(data_dir), CEILING_SECONDS, "the new picture"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(CEILING_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    log = "".join(said) + _said(lines)
    failures = [line for line in log.splitlines() if "the first run failed" in line]
    assert failures[0].startswith("WARNING "), log
    assert f"Another findimage run (pid {os.getpid()} on elsewhere)" in failures[0], log
    assert "watch: Indexed 1, removed 0, skipped 0" in log, log
    assert "Traceback" not in log and f"watching {library} stopped" not in log, log
