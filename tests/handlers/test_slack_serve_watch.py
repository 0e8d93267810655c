"""`findimage serve --watch`: the bot keeps the index in line with the library beside
answering, and stops its watcher with itself."""

from __future__ import annotations

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


def test_serve_watch_indexes_what_is_copied_in_and_stops_with_the_bot(
    findimage_env: dict[str, str], fake_slack: FakeSlack, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 3)
    data_dir = Path(findimage_env["FINDIMAGE_DATA_DIR"])
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
    process = subprocess.Popen(
        [sys.executable, "-m", "findimage.cli", "serve", "--watch", "-v", "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_stderr, args=(process, lines), daemon=True).start()
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
    said = []
    while not lines.empty():
        said.append(lines.get())
    log = "".join(said)
    assert "watch: Indexed 1, removed 0, skipped 0" in log, log
    assert "Traceback" not in log, log
