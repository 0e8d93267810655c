"""The words of `findimage search` as a user types them: signed coordinates, paths that name
no file, quotes, names holding " - ", and like: ids (issue 20, items 8 and 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from findimage.documents import document_id
from tests.support.cli import findimage, json_in_process, run_in_process
from tests.support.pictures import draw_shape, encode, exif_jpeg

SYDNEY = (-33.8568, 151.2153)
NEW_YORK = (40.7128, -74.006)
SANTIAGO = (-33.4489, -70.6693)


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]):
    root = tmp_path / "library"
    root.mkdir()
    for name, at, colour in (
        ("sydney.jpg", SYDNEY, "red"),
        ("new york.jpg", NEW_YORK, "blue"),
        ("santiago.jpg", SANTIAGO, "green"),
    ):
        image = draw_shape(colour, "circle", size=(64, 64))
        (root / name).write_bytes(exif_jpeg(at=at, image=image))
    (root / "Paris - Nice.png").write_bytes(encode(draw_shape("yellow", "triangle", size=(64, 64))))
    json_in_process(capsys, "index", str(root))
    return root


def _paths(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    results = json_in_process(capsys, "search", "picture", "-k", "10", *args)["results"]
    return sorted(result["path"] for result in results)


@pytest.mark.parametrize(
    "near",
    [
        ["--near", "-33.87,151.21,10"],
        ["--near", "-33.87,151.21,10km"],
        ["--near", "-33.87, 151.21, 10"],
        ["--near=-33.87,151.21,10"],
        ["--ne", "-33.87,151.21,10"],
        ["--near", "-33.870,+151.21,10"],
    ],
)
def test_near_takes_a_southern_latitude_in_every_form(
    library: Path, capsys: pytest.CaptureFixture[str], near: list[str]
) -> None:
    assert _paths(capsys, *near) == ["sydney.jpg"]


def test_near_takes_western_and_south_western_points(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _paths(capsys, "--near", "40.71,-74.0,10") == ["new york.jpg"]
    assert _paths(capsys, "--near", "-33.45,-70.67,10") == ["santiago.jpg"]
    # The value may come before the description too.
    done = run_in_process(capsys, "search", "--near", "-33.45,-70.67,10", "picture", "--json")
    assert done[0] == 0, done[2]


def test_near_with_a_negative_latitude_from_a_real_shell(
    library: Path, findimage_env: dict[str, str]
) -> None:
    # The words as a shell hands them over (sys.argv), not a list given to main.
    done = findimage(
        "search", "picture", "--near", "-33.87,151.21,10", "--json", env={}, cwd=library.parent
    )
    assert done.returncode == 0, done.stderr
    assert '"path": "sydney.jpg"' in done.stdout and "santiago" not in done.stdout


@pytest.mark.parametrize(
    "term",
    [
        "./nowhere/missing.jpg",
        "../missing.png",
        "/no/such/folder/picture",
        "~/no-such-findimage-picture",
        "missing.jpg",
        "holiday/missing.NEF",
    ],
)
def test_a_term_that_can_only_be_a_path_and_names_no_file_is_refused(
    library: Path, capsys: pytest.CaptureFixture[str], term: str
) -> None:
    code, out, err = run_in_process(capsys, "search", f"red + {term}")
    assert (code, out) == (2, "")
    assert err == (
        f"findimage: No picture file is at {term}: give the path of a picture, or put words "
        'in double quotes ("...") to search them as text.\n'
    )


def test_words_with_a_slash_that_name_no_file_stay_words(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "search", "AC/DC + 50/50 + ~50 people")
    assert code == 0, err
    assert out.startswith('Pictures for "AC/DC + 50/50 + ~50 people", best first:')


def test_quotes_keep_a_term_whole(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_in_process(capsys, "search", '"salt + pepper"', "-k", "1")
    assert code == 0, err
    # One plain text term: searched and titled as the words between the quotes.
    assert out.splitlines()[0] == 'Pictures for "salt + pepper", best first:'
    # Quoted, a picture's name is words.
    code, _, err = run_in_process(capsys, "search", '"missing.jpg" + red')
    assert code == 0, err


def test_a_picture_whose_name_holds_a_minus_stays_one_term(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = str(library / "Paris - Nice.png")
    (top,) = json_in_process(capsys, "search", picture, "-k", "1")["results"]
    assert (top["path"], top["score"] > 0.99) == ("Paris - Nice.png", True)
    # Inside a combined query as well, given as one word or as the shell split it.
    # (The text barely weighs: the picture itself must come first.)
    for words in ([f"{picture} - 0.01:blue"], [*picture.split(" "), "-", "0.01:blue"]):
        (top,) = json_in_process(capsys, "search", *words, "-k", "1")["results"]
        assert top["path"] == "Paris - Nice.png"


def test_like_ids_that_are_unknown_or_ambiguous_are_usage_errors_both_ways(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _names_whose_ids_share_a_start()
    for name in (first, second):
        (library / name).write_bytes(encode(draw_shape("red", "square", size=(64, 64))))
    json_in_process(capsys, "index", str(library))
    shared = document_id(first)[:4]
    for words in (["like:0000000000 + beach"], ["--like", "0000000000"]):
        code, _, err = run_in_process(capsys, "search", *words)
        assert (code, err) == (2, "findimage: No picture with id 0000000000 is in the index.\n")
    for words in ([f"like:{shared} + beach"], ["--like", shared], ["--like", f"like:{shared}"]):
        code, _, err = run_in_process(capsys, "search", *words)
        assert (code, err) == (
            2,
            f"findimage: Several pictures have an id starting with {shared}: "
            "give more of the id.\n",
        )


def test_like_option_takes_the_like_form_too(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sydney,) = json_in_process(capsys, "search", str(library / "sydney.jpg"), "-k", "1")["results"]
    bare = json_in_process(capsys, "search", "--like", sydney["id"][:8])["results"]
    written = json_in_process(capsys, "search", "--like", f"like:{sydney['id'][:8].upper()}")
    assert written["results"] == bare and bare
    code, _, err = run_in_process(capsys, "search", "--like", "like:xyz")
    assert code == 2 and "like: takes the id of an indexed picture" in err


def _names_whose_ids_share_a_start() -> tuple[str, str]:
    """Two picture names whose ids start with the same 4 characters (a few hundred tries)."""
    seen: dict[str, str] = {}
    for number in range(100_000):
        name = f"twin-{number}.png"
        start = document_id(name)[:4]
        if start in seen:
            return seen[start], name
        seen[start] = name
    raise AssertionError("no two ids share a start")
