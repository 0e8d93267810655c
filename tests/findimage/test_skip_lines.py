"""A skipped file's line in `findimage index` and in a watcher's burst line: a path up to
SHOWN_PATH_WIDTH characters is shown whole; a longer one (issue 20: a path over 4,096 bytes
made a 4,199-character line) keeps its start and its end around "...", at exactly that
width. `--json` keeps the whole path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from findimage.documents import IndexReport, Skipped
from findimage.presenters import report_output
from findimage.terminal import SHOWN_PATH_WIDTH, shortened
from indexer.watch import burst_line
from tests.support.cli import run_in_process
from tests.support.pictures import make_library

REASON = "not a picture"


def _path(length: int) -> str:
    """A path of exactly `length` characters ending in a file name."""
    name = "/picture-at-the-end.jpg"
    return ("a/" * length)[: length - len(name)] + name


def _skip_line(report: IndexReport) -> str:
    lines = report_output(report, False).splitlines()
    (line,) = [line for line in lines if line.startswith("  skipped ")]
    return line


def test_a_path_of_exactly_the_width_is_shown_whole() -> None:
    path = _path(SHOWN_PATH_WIDTH)
    report = IndexReport(skipped=[Skipped(path, REASON)])
    assert _skip_line(report) == f"  skipped {path}: {REASON}"
    assert f"Skipped {path}: {REASON}." in (burst_line(report, "") or "")


def test_a_path_one_past_the_width_keeps_its_start_and_end_at_the_width() -> None:
    path = _path(SHOWN_PATH_WIDTH + 1)
    shown = shortened(path)
    assert len(shown) == SHOWN_PATH_WIDTH
    start, end = shown.split("...")
    assert path.startswith(start) and path.endswith(end) and len(start) > 40
    assert end.endswith("/picture-at-the-end.jpg")
    report = IndexReport(skipped=[Skipped(path, REASON)])
    assert _skip_line(report) == f"  skipped {shown}: {REASON}"
    assert f"Skipped {shown}: {REASON}." in (burst_line(report, "") or "")
    data = json.loads(report_output(report, True))
    assert data["skipped"] == [{"path": path, "reason": REASON}]


def test_the_width_counts_a_name_as_shown_with_its_escapes() -> None:
    path = "\x1b" * SHOWN_PATH_WIDTH  # 240 characters, each shown as the 4 of \x1b
    shown = _skip_line(IndexReport(skipped=[Skipped(path, REASON)]))
    assert "\x1b" not in shown
    assert len(shown) == len(f"  skipped : {REASON}") + SHOWN_PATH_WIDTH


def test_index_names_a_path_over_the_system_limit_in_one_short_line(
    tmp_path: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "library"
    make_library(library, 2)
    here, fd = library, os.open(library, os.O_RDONLY)
    try:  # made step by step: one mkdir of the whole path would be refused
        while len(os.fsencode(here)) < 4200:
            os.mkdir("d" * 200, dir_fd=fd)
            deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, here = deeper, here / ("d" * 200)
        with open(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as picture:
            picture.write(b"x")
    finally:
        os.close(fd)
    code, out, err = run_in_process(capsys, "index", str(library))
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if line.startswith("  skipped ")]
    reason = ": the path is longer than the 4096 bytes this system allows"
    assert line.endswith(reason) and "ddd...ddd" in line
    assert len(line) == len("  skipped ") + SHOWN_PATH_WIDTH + len(reason)
