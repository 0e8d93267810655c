"""docs/slack.md's set-up, step 4, as written: `findimage index /path/to/library`, then
`findimage serve`, with no library setting. The bot previews the library the index records,
says so in its start-up line, and its first answer carries pictures.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.cli import findimage
from tests.support.pictures import make_library
from tests.support.serve_process import ServeProcess, pump_stderr
from tests.support.slack_answers import answer_at, image_blocks, result_paths
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_requests import SIGNING_SECRET


# Two real processes, each importing PyTorch and loading the models: about 22 s alone.
@pytest.mark.slow
def test_index_then_serve_with_no_library_setting_answers_with_previews(
    tmp_path: Path, fake_slack: FakeSlack, trained_clip: Path, model_cache: Path
) -> None:
    library = tmp_path / "Pictures"
    make_library(library, 8)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FINDIMAGE_", "SLACK_"))
    }
    # The tokens of step 3, the models of the README; neither FINDIMAGE_LIBRARY nor
    # FINDIMAGE_STORE, as step 4 sets neither.
    env.update(
        FINDIMAGE_DATA_DIR=str(tmp_path / "data"),
        FINDIMAGE_MODEL_CACHE=str(model_cache),
        FINDIMAGE_IMAGE_MODEL=str(trained_clip),
        FINDIMAGE_TEXT_MODEL=str(trained_clip),
        FINDIMAGE_DEVICE="cpu",
        FINDIMAGE_PORT="0",
        FINDIMAGE_SLACK_API_URL=fake_slack.api_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        HF_HUB_OFFLINE="1",
    )
    work = tmp_path / "work"
    work.mkdir()

    indexed = findimage("index", str(library), env=env, cwd=work)
    assert indexed.returncode == 0, indexed.stderr

    process = subprocess.Popen(
        [sys.executable, "-m", "findimage.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        cwd=work,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_stderr, args=(process, lines), daemon=True).start()
    try:
        first = lines.get(timeout=120)
        assert "listening for Slack on http://127.0.0.1:" in first, first
        assert f"previews from {library};" in first, first
        port = first.split("http://127.0.0.1:")[1].split("/")[0]
        served = ServeProcess(process, f"http://127.0.0.1:{port}", first, lines)

        response = served.sender.command("red circle", fake_slack.response_url("steps"))
        assert response.status_code == 200
        # The models load in the background after the start: a generous wait for the answer.
        fake_slack.wait_for("response", where=lambda r: r.path.endswith("/steps"), timeout=120)
        answer = answer_at(fake_slack, "steps")
        code, _ = served.stop(signal.SIGINT)
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    paths = result_paths(answer)
    assert paths, answer
    # Every result has its picture, uploaded from the library the index recorded.
    assert len(image_blocks(answer)) == len(paths), answer["blocks"]
    assert fake_slack.calls("files.completeUploadExternal")
