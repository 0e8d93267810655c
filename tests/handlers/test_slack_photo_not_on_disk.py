"""A photo posted to the bot is downloaded into memory, searched with, and never written to
disk: not to the temp folder, the data dir, the slack_library or the working directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.support.pictures import encode, gradient
from tests.support.slack_answers import DM, posted_in_thread
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot, BotFactory, IndexedLibrary
from tests.support.slack_requests import message_event


def snapshot(*folders: Path) -> dict[Path, tuple[int, int]]:
    found = {}
    for folder in folders:
        for here, _, names in os.walk(folder):
            for name in names:
                path = Path(here, name)
                stat = path.stat()
                found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


def test_a_photo_answer_writes_no_file(
    start_bot: BotFactory,
    fake_slack: FakeSlack,
    slack_library: IndexedLibrary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot: Bot = start_bot()
    temp = tmp_path / "temp"
    temp.mkdir()
    # Every tempfile call in this process (the bot's included) now lands here.
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(tmp_path)
    photo = encode(gradient(seed=11), "JPEG")
    watched = (temp, slack_library.data_dir, slack_library.root, tmp_path)
    before = snapshot(*watched)

    event = message_event(DM, files=[fake_slack.add_file("holiday.jpg", photo, "image/jpeg")])
    assert bot.sender.event(event).status_code == 200
    [answer] = posted_in_thread(fake_slack, event["ts"])
    bot.finish_work()

    assert answer["blocks"], "the photo was not answered"
    after = snapshot(*watched)
    assert after == before, set(after.items()) ^ set(before.items())
    for path in after:
        assert photo not in path.read_bytes(), path
