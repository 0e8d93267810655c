"""`findimage search --after/--before/--near` on pictures with EXIF dates, GPS, or neither."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.cli import json_in_process, run_in_process
from tests.support.pictures import draw_shape, encode, exif_jpeg

PARIS_CENTRE = "48.8566,2.3522,10"


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]):
    root = tmp_path / "library"
    (root / "paris").mkdir(parents=True)
    (root / "lyon").mkdir()
    (root / "scan").mkdir()
    (root / "paris" / "eiffel.jpg").write_bytes(
        exif_jpeg(
            when="2024:06:03 10:00:00",
            at=(48.8584, 2.2945),
            image=draw_shape("blue", "triangle", size=(64, 64)),
        )
    )
    (root / "lyon" / "square.jpg").write_bytes(
        exif_jpeg(when="2024:05:31 23:59:59", at=(45.7578, 4.832))
    )
    scan = root / "scan" / "old.png"
    scan.write_bytes(encode(draw_shape("green", "circle", size=(64, 64)), "PNG"))
    file_date = datetime(2024, 6, 15, 12, tzinfo=UTC).timestamp()
    os.utime(scan, (file_date, file_date))
    json_in_process(capsys, "index", str(root))
    return root


def _paths(capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    results = json_in_process(capsys, "search", "picture", "-k", "10", "--json", *options)
    return sorted(result["path"] for result in results["results"])


def test_dates_keep_pictures_by_when_they_were_taken_else_by_their_file_date(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _paths(capsys, "--after", "2024-06") == ["paris/eiffel.jpg", "scan/old.png"]
    assert _paths(capsys, "--before", "2024-06") == ["lyon/square.jpg"]
    assert _paths(capsys, "--after", "2024-06-04", "--before", "2025") == ["scan/old.png"]
    results = json_in_process(capsys, "search", "picture", "-k", "3")["results"]
    dates = {result["path"]: (result["date"], result["date_from"]) for result in results}
    assert dates == {
        "paris/eiffel.jpg": ("2024-06-03T10:00:00", "taken"),
        "lyon/square.jpg": ("2024-05-31T23:59:59", "taken"),
        "scan/old.png": ("2024-06-15T12:00:00", "file"),
    }


def test_near_keeps_pictures_taken_within_the_distance(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _paths(capsys, "--near", PARIS_CENTRE) == ["paris/eiffel.jpg"]
    assert _paths(capsys, "--near", "48.8566,2.3522,500") == ["lyon/square.jpg", "paris/eiffel.jpg"]
    code, out, err = run_in_process(capsys, "search", "picture", "--near", PARIS_CENTRE)
    assert code == 0, err
    title, _, line = out.splitlines()
    assert title == ('Pictures for "picture", within 10 km of 48.8566,2.3522, best first:')
    assert line.split()[4:6] == ["2024-06-03", "taken"]


def test_a_filter_that_cannot_be_read_is_one_line(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "search", "picture", "--near", "Paris")
    assert (code, out) == (2, "")
    assert err == (
        "findimage: --near takes a latitude, a longitude and a distance in km, "
        "like 48.85,2.35,10.\n"
    )
    code, _, err = run_in_process(capsys, "search", "x", "--after", "2025", "--before", "2024")
    assert (code, err) == (
        2,
        "findimage: The --after date (2025-01-01) must come before the --before date "
        "(2024-01-01), or no picture can match.\n",
    )
    # An empty date is a mistake too, not a filter left out.
    code, _, err = run_in_process(capsys, "search", "x", "--after", "")
    assert (code, err) == (2, "findimage: --after takes a date like 2024, 2024-06 or 2024-06-03.\n")
