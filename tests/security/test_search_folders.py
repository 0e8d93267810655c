"""`in:` and `--in` name folders inside the library, never a path of the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from findimage.cli import main
from findimage.search import OUTSIDE_FOLDER, library_folder
from handlers.commands import parse_command_text
from tests.support.pictures import make_library


@pytest.mark.parametrize(
    "written", ["../../etc", "..", "a/../../b", "a/..", '"../secret folder"', "..\\windows"]
)
def test_a_slack_folder_that_climbs_out_is_refused_with_a_sentence(written: str) -> None:
    parsed = parse_command_text(f"in:{written} cat")
    assert parsed.folder is None
    assert parsed.problem == OUTSIDE_FOLDER


@pytest.mark.parametrize(
    ("written", "folder"),
    [("/etc", "etc"), ("./trips//2024/", "trips/2024"), ("trips\\2024", "trips/2024")],
)
def test_a_slack_folder_is_read_from_the_library_root(written: str, folder: str) -> None:
    """A leading slash means the library's root: /etc is the library's own folder etc."""
    assert parse_command_text(f"in:{written} cat").folder == folder


def test_dot_dot_is_refused_rather_than_resolved() -> None:
    with pytest.raises(Exception, match="inside the library"):
        library_folder("trips/../trips")


@pytest.mark.parametrize("written", ["../outside", "/etc", "trips/../../x"])
def test_the_cli_refuses_a_folder_outside_the_library_before_opening_the_index(
    written: str,
    tmp_path: Path,
    findimage_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["search", "red circle", "--in", written])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"findimage: {OUTSIDE_FOLDER}"
    assert not (tmp_path / "data").exists(), "the index was opened for a refused query"


def test_the_cli_searches_a_folder_inside_the_library(
    tmp_path: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "library"
    make_library(root, 12)
    assert main(["index", str(root)]) == 0
    capsys.readouterr()
    assert main(["search", "red circle", "--in", "./trips/", "-k", "3"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if ".png" in line]
    assert lines and all("trips/" in line for line in lines)
