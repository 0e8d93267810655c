from __future__ import annotations

import os
import re
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from findimage.cli import build_parser, main
from findimage.images import UNREADABLE
from findimage.settings import load_settings
from tests.support.cli import json_in_process, run_in_process
from tests.support.pictures import draw_shape, make_library, save


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str]) -> Path:
    root = tmp_path / "library"
    make_library(root, 16)
    return root


def test_index_json_report_shape(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (library / "broken.jpg").write_bytes(b"nope")
    report = json_in_process(capsys, "index", str(library))
    assert report == {
        "indexed": 16,
        "unchanged": 0,
        "deleted": 0,
        "skipped": [{"path": "broken.jpg", "reason": UNREADABLE}],
    }
    assert json_in_process(capsys, "index", str(library))["unchanged"] == 16


def test_index_reads_the_library_from_the_settings(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINDIMAGE_LIBRARY", str(library))
    assert json_in_process(capsys, "index")["indexed"] == 16


def test_the_old_name_of_the_library_setting_still_works_and_the_new_one_wins(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINDIMAGE_STORE", str(library))
    assert load_settings().library == library
    monkeypatch.setenv("FINDIMAGE_LIBRARY", str(tmp_path))
    assert load_settings().library == tmp_path


def test_index_dry_run_lists_changes(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = json_in_process(capsys, "index", str(library), "--dry-run")
    assert report["dry_run"] is True
    assert len(report["to_index"]) == 16 and report["to_delete"] == []
    assert json_in_process(capsys, "status")["count"] == 0


def test_search_json_shape_and_order(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    json_in_process(capsys, "index", str(library))
    results = json_in_process(capsys, "search", "a red circle", "-k", "4")["results"]
    assert len(results) == 4
    for result in results:
        assert {"id", "path", "score", "width", "height", "folder", "name"} <= set(result)
        assert 0.0 <= result["score"] <= 1.0
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_search_by_image_finds_that_image_first(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    query = sorted((library / "marketing").iterdir())[1]
    (top,) = json_in_process(capsys, "search", "--image", str(query), "-k", "1")["results"]
    assert top["path"] == query.relative_to(library).as_posix()
    assert top["score"] > 0.99


def test_search_like_an_indexed_picture_leaves_it_out(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    first = json_in_process(capsys, "search", "anything", "-k", "1")["results"][0]
    results = json_in_process(capsys, "search", "--like", first["id"], "-k", "3")["results"]
    assert len(results) == 3
    assert first["id"] not in {r["id"] for r in results}


def test_search_in_a_folder_keeps_to_it(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    json_in_process(capsys, "index", str(library))
    results = json_in_process(capsys, "search", "picture", "-k", "16", "--in", "trips")["results"]
    assert {r["folder"] for r in results} == {"trips", "trips/2024"}
    assert len(results) == 8


def test_status_json_shape(
    library: Path, capsys: pytest.CaptureFixture[str], tiny_clip: Path
) -> None:
    json_in_process(capsys, "index", str(library))
    status = json_in_process(capsys, "status")
    assert status["backend"] == "embedded"
    assert status["count"] == 16
    assert status["image_model"] == status["text_model"] == str(tiny_clip)
    assert status["dims"] == 16
    assert status["last_indexed_at"]


def test_human_output_is_readable(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_in_process(capsys, "index", str(library))
    assert (code, out.splitlines()[0]) == (0, "Indexed 16, unchanged 0, removed 0, skipped 0.")
    code, out, _ = run_in_process(capsys, "search", "blue", "-k", "2")
    assert code == 0
    title, header, *rows = out.splitlines()
    assert title == 'Pictures for "blue", best first:'
    assert header.split() == ["score", "id", "size", "date", "from", "picture"]
    assert len(rows) == 2
    for row in rows:
        score, short_id, size, unit, day, origin, picture = row.split()
        assert len(short_id) == 8 and origin == "file"
        assert 0.0 <= float(score) <= 1.0
        assert unit in {"B", "KB"} and float(size) > 0
        # The absolute path, ready to open; no escape codes where stdout is no terminal.
        assert Path(picture).is_absolute() and Path(picture).is_file()
        # No EXIF date in these pictures: the file's own date.
        assert day == f"{datetime.fromtimestamp(Path(picture).stat().st_mtime, UTC):%Y-%m-%d}"
        assert Path(picture).is_relative_to(library.resolve())


def test_result_paths_are_hyperlinks_where_the_terminal_shows_them(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    json_in_process(capsys, "index", str(library))
    monkeypatch.setenv("FORCE_HYPERLINK", "1")
    _, out, _ = run_in_process(capsys, "search", "blue", "-k", "1")
    row = out.splitlines()[2]
    match = re.search(r"\x1b\]8;;(file://[^\x1b]+)\x1b\\(.+?)\x1b\]8;;\x1b\\$", row)
    assert match, row
    uri, shown = match.groups()
    assert uri == f"file://{socket.gethostname()}{Path(shown).as_uri().removeprefix('file://')}"
    assert Path(shown).is_file()


def test_search_json_adds_the_absolute_location(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    for result in json_in_process(capsys, "search", "red", "-k", "3")["results"]:
        assert result["location"] == str(library.resolve() / result["path"])


@pytest.mark.parametrize(
    ("args", "verbosity"),
    [
        (["status"], 0),
        (["-v", "status"], 1),
        (["status", "-v"], 1),
        (["index", "-vv", "--dry-run"], 2),
        (["search", "red", "--verbose"], 1),
        (["serve", "-v"], 1),
    ],
)
def test_verbose_is_accepted_before_or_after_the_command(args: list[str], verbosity: int) -> None:
    assert build_parser().parse_args(args).verbose == verbosity


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index"], "FINDIMAGE_LIBRARY"),
        (["index", "/no/such/folder"], "/no/such/folder is not a folder"),
        (["search", "x", "-k", "0"], "-k must be at least 1"),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_one_line(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str], args: list, message: str
) -> None:
    code, _, err = run_in_process(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_folder_given_on_the_command_line_is_named_not_the_setting(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_in_process(capsys, "index", "/no/such/folder")
    assert code == 2
    assert err.strip() == (
        "findimage: /no/such/folder is not a folder: give the folder of pictures to index."
    )


def test_argparse_usage_errors_exit_2(findimage_env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["search"])
    assert exited.value.code == 2


def test_invalid_setting_is_named(
    findimage_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINDIMAGE_TOP_K", "many")
    code, _, err = run_in_process(capsys, "status")
    assert code == 2 and "FINDIMAGE_TOP_K" in err


def test_search_on_an_empty_index_says_to_index_first(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_in_process(capsys, "search", "mountain")
    assert code == 1
    assert "findimage index" in err


def test_model_that_cannot_be_loaded_is_one_plain_line(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", "/models/not-here")
    code, _, err = run_in_process(capsys, "index", str(library))
    assert code == 1
    assert err.strip().splitlines() == [
        "findimage: Could not load the model '/models/not-here': there is no such folder. "
        "Set FINDIMAGE_IMAGE_MODEL to a folder holding a local copy of it, or to a model name."
    ]
    # A failed first run leaves no empty index behind.
    assert not Path(os.environ["FINDIMAGE_DATA_DIR"]).exists()


def test_switching_models_on_an_existing_index_is_refused(
    library: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_clip: Path,
) -> None:
    json_in_process(capsys, "index", str(library))
    other = tmp_path / "other-model"
    shutil.copytree(tiny_clip, other)
    monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", str(other))
    code, _, err = run_in_process(capsys, "search", "red")
    assert code == 2
    assert "rebuild the index" in err
    # An index run with nothing to embed says so too, without loading a model to find out.
    shutil.rmtree(other)
    code, _, err = run_in_process(capsys, "index", str(library))
    assert code == 2
    assert "rebuild the index" in err


def test_new_picture_is_found_after_an_incremental_run(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    added = save(draw_shape("purple", "square", (150, 90), offset=5), library / "new" / "p.png")
    assert json_in_process(capsys, "index", str(library))["indexed"] == 1
    (top,) = json_in_process(capsys, "search", "--image", str(added), "-k", "1")["results"]
    assert top["path"] == "new/p.png"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"GIF89a but not really", UNREADABLE),
        (b"root:x:0:0:root:/root:/bin/bash\n", UNREADABLE),
        (b"", "the file is empty"),
        (None, "Is a directory"),
        ("missing", "No such file or directory"),
    ],
    ids=["fake-gif", "text-file", "empty", "folder", "missing"],
)
def test_every_problem_with_the_query_picture_exits_2_naming_the_file(
    library: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: bytes | str | None,
    reason: str,
) -> None:
    json_in_process(capsys, "index", str(library))
    query = tmp_path / "query.jpg"
    if content is None:
        query.mkdir()
    elif isinstance(content, bytes):
        query.write_bytes(content)
    code, _, err = run_in_process(capsys, "search", "--image", str(query))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert str(query) in line and reason in line
    assert "Pillow" not in line and "Traceback" not in line


def test_text_search_ranks_the_described_picture_first_in_any_phrasing(
    tmp_path: Path,
    findimage_env: dict[str, str],
    trained_clip: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", str(trained_clip))
    monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", str(trained_clip))
    library = tmp_path / "shapes"
    for color in ("red", "blue", "yellow"):
        for shape in ("circle", "square"):
            save(draw_shape(color, shape), library / color / f"{shape}.png")
    json_in_process(capsys, "index", str(library))
    for words, expected in [
        ("a red circle", "red/circle.png"),
        ("a photo of a blue square", "blue/square.png"),
        ("yellow circle", "yellow/circle.png"),
    ]:
        results = json_in_process(capsys, "search", words, "-k", "6")["results"]
        assert results[0]["path"] == expected, words
    within = json_in_process(capsys, "search", "a red circle", "--in", "blue", "-k", "1")["results"]
    assert [r["path"] for r in within] == ["blue/circle.png"]
