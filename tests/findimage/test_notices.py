from __future__ import annotations

import logging
import threading

import pytest

from findimage.cli import main
from findimage.notices import announced_if_slow, notices


class _Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.event.set()


def test_a_wait_past_the_threshold_is_announced_once() -> None:
    said = _Said()
    notices.addHandler(said)
    previous = notices.level
    notices.setLevel(logging.INFO)
    try:
        with announced_if_slow("Loading the image model (clip) ...", after=0.01):
            assert said.event.wait(timeout=30)
        assert said.messages == ["Loading the image model (clip) ..."]
    finally:
        notices.removeHandler(said)
        notices.setLevel(previous)


def test_the_command_line_shows_notices_as_bare_lines_on_stderr(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    capsys.readouterr()
    notices.info("Loading the text model (clip) ...")
    out, err = capsys.readouterr()
    assert (out, err) == ("", "Loading the text model (clip) ...\n")
