"""Combined queries on the command line: picture files, like: ids and text in one query."""

from __future__ import annotations

from pathlib import Path

import pytest

from findimage.cli import main
from findimage.query import SYNTAX
from tests.support.cli import json_in_process, run_in_process
from tests.support.pictures import make_library


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]):
    root = tmp_path / "library"
    make_library(root, 8)
    json_in_process(capsys, "index", str(root))
    return root


def test_a_picture_file_in_the_query_stands_for_itself(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = sorted((library / "marketing").iterdir())[1]
    (top,) = json_in_process(capsys, "search", str(query), "-k", "1")["results"]
    assert top["path"] == query.relative_to(library).as_posix()
    assert top["score"] > 0.99


def test_a_picture_plus_its_own_id_leaves_it_out_and_the_shell_words_join(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = sorted((library / "marketing").iterdir())[1]
    (itself,) = json_in_process(capsys, "search", "--image", str(query), "-k", "1")["results"]
    short = itself["id"][:8]
    results = json_in_process(
        capsys, "search", str(query), "+", f"like:{short}", "-", "0.5:a red circle", "-k", "3"
    )["results"]
    assert len(results) == 3
    assert itself["id"] not in {result["id"] for result in results}

    code, out, err = run_in_process(capsys, "search", f"2:like:{short} + picture", "-k", "2")
    assert code == 0, err
    title, header, *lines = out.splitlines()
    assert title == f'Pictures for "2:like:{short} + picture", best first:'
    assert header.split() == ["score", "id", "size", "date", "from", "picture"]
    assert len(lines) == 2 and all(len(line.split()[1]) == 8 for line in lines)


def test_a_word_that_names_a_file_here_stays_a_word(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    query = sorted((library / "marketing").iterdir())[1]
    monkeypatch.chdir(query.parent)
    # "sunset" is a file here (not a picture: read as one, it would fail), but a word
    # without a path or a picture's extension is searched as the word.
    Path("sunset").write_bytes(b"not a picture")
    code, _, err = run_in_process(capsys, "search", "sunset", "+", "beach", "-k", "1")
    assert code == 0, err
    (top,) = json_in_process(capsys, "search", f"./{query.name}", "-k", "1")["results"]
    assert top["score"] > 0.99


def test_a_query_that_cannot_be_read_is_one_line_with_the_syntax(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "search", "beach", "+")
    assert code == 2 and out == ""
    assert err == f"findimage: A + or - needs a term on each side. {SYNTAX}.\n"
    code, _, err = run_in_process(capsys, "search", "like:0000000000 + beach")
    assert code == 2
    assert err == "findimage: No picture with id 0000000000 is in the index.\n"


def test_text_with_an_image_option_is_a_usage_error(library: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["search", "beach", "--image", str(next(library.rglob("*.png")))])
    assert exited.value.code == 2
