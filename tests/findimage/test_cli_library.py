"""The index a newcomer gets: one per user wherever they run from, bound to one library,
refreshed a folder at a time, and answering at once when there is nothing to do."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import findimage, json_in_process, run_in_process
from tests.support.pictures import draw_shape, make_library, save


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str]) -> Path:
    root = tmp_path / "library"
    make_library(root, 16)
    return root


@pytest.fixture
def fresh_home(
    tmp_path: Path, findimage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """An empty HOME, and no setting that names a data dir: the platform default applies."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("FINDIMAGE_DATA_DIR")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if not path.is_dir())


def test_index_in_one_folder_and_search_from_another_use_the_same_index(
    tmp_path: Path, library: Path, fresh_home: Path
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    indexed = findimage("index", str(library), "--json", env={}, cwd=here)
    assert indexed.returncode == 0, indexed.stderr
    assert json.loads(indexed.stdout)["indexed"] == 16

    found = findimage("search", "red", "-k", "3", "--json", env={}, cwd=elsewhere)
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert len(results) == 3
    assert all(Path(r["location"]).is_file() for r in results)
    # The index is in the user data folder, not in either working folder.
    assert (fresh_home / ".local/share/findimage/index.sqlite3").is_file()
    assert _files(here) == _files(elsewhere) == []


def test_status_and_search_in_a_fresh_home_create_nothing(tmp_path: Path, fresh_home: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    status = findimage("status", env={}, cwd=work)
    assert status.returncode == 0, status.stderr
    expected = fresh_home / ".local/share/findimage/index.sqlite3"
    assert f"location: {expected} (not created yet" in status.stdout
    assert "count: 0" in status.stdout

    search = findimage("search", "snowy mountain", env={}, cwd=work)
    assert search.returncode == 1
    # What to run says which folder to give: with no library set, `findimage index` alone
    # would only answer that no library is set.
    assert search.stderr.strip() == (
        "findimage: The index is empty: run `findimage index /path/to/pictures` first."
    )
    assert list(fresh_home.iterdir()) == [] and list(work.iterdir()) == []


def test_a_relative_data_dir_is_shown_absolute(
    tmp_path: Path, findimage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("FINDIMAGE_DATA_DIR", "relative/data")
    status = json_in_process(capsys, "status")
    assert status["location"].startswith(f"{tmp_path / 'relative/data' / 'index.sqlite3'} ")


def test_indexing_a_subfolder_refreshes_it_and_keeps_the_rest(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    for old in (library / "trips" / "2024").iterdir():
        old.unlink()
    save(draw_shape("green", "circle"), library / "trips" / "2024" / "new.png")
    # Gone from outside the folder too, but a folder run does not look there.
    next((library / "marketing").iterdir()).unlink()

    report = json_in_process(capsys, "index", str(library / "trips" / "2024"))
    assert (report["indexed"], report["unchanged"], report["deleted"]) == (1, 0, 4)
    paths = {r["path"] for r in json_in_process(capsys, "search", "x", "-k", "100")["results"]}
    assert "trips/2024/new.png" in paths
    assert not any(p.startswith("trips/2024/") and p != "trips/2024/new.png" for p in paths)
    assert len(paths) == 16 - 4 + 1

    # The whole library again: the marketing picture leaves now.
    assert json_in_process(capsys, "index", str(library))["deleted"] == 1


def test_another_library_is_refused_with_both_roots_and_the_ways_on(
    tmp_path: Path, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    other = tmp_path / "other"
    for color in ("red", "green", "blue"):
        save(draw_shape(color, "triangle", size=(80, 50)), other / f"{color}.png")
    code, out, err = run_in_process(capsys, "index", str(other))
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"findimage: This index holds the library {library.resolve()}, and {other.resolve()} "
        "is not inside it: to keep a second library, set FINDIMAGE_DATA_DIR to another place "
        f"for its index; to start over with {other.resolve()}, run "
        f"`findimage index {other.resolve()} --replace`."
    )
    assert json_in_process(capsys, "status")["count"] == 16

    report = json_in_process(capsys, "index", str(other), "--replace")
    assert (report["indexed"], report["deleted"]) == (3, 16)
    status = json_in_process(capsys, "status")
    assert (status["count"], status["library"]) == (3, str(other.resolve()))
    # The old library is now the other one.
    assert run_in_process(capsys, "index", str(library))[0] == 2


def test_index_without_a_folder_refreshes_the_indexed_library(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    save(draw_shape("purple", "square"), library / "added.png")
    assert json_in_process(capsys, "index")["indexed"] == 1


@pytest.fixture
def breakable_model(tmp_path: Path, tiny_clip: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the tiny model as both models; emptying it makes any load fail, name unchanged."""
    model = tmp_path / "model"
    shutil.copytree(tiny_clip, model)
    monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", str(model))
    monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", str(model))
    return model


def _break(model: Path) -> None:
    shutil.rmtree(model)
    model.mkdir()


def test_an_unchanged_index_run_loads_no_model(
    library: Path, breakable_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    os.utime(next(library.glob("*.png")), (1_600_000_000, 1_600_000_000))
    _break(breakable_model)
    code, out, err = run_in_process(capsys, "index", str(library))
    # Touched but the same bytes: no picture needs the model.
    assert (code, out.splitlines()[0]) == (0, "Indexed 0, unchanged 16, removed 0, skipped 0.")
    # No progress bar, no notice: nothing on stderr at all.
    assert err == ""
    # A picture that does need the model shows the load would have failed.
    save(draw_shape("orange", "circle"), library / "new.png")
    code, _, err = run_in_process(capsys, "index", str(library))
    assert code == 1 and "Could not load the model" in err


def test_search_on_a_missing_index_loads_no_model(
    breakable_model: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _break(breakable_model)
    query = save(draw_shape("red", "circle"), tmp_path / "query.png")
    for args in (["search", "mountain"], ["search", "--image", str(query)]):
        code, _, err = run_in_process(capsys, *args)
        assert (code, err.strip()) == (
            1,
            "findimage: The index is empty: run `findimage index /path/to/pictures` first.",
        )


def test_search_on_an_index_emptied_by_the_indexer_loads_no_model(
    library: Path, breakable_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    for picture in _files(library):
        picture.unlink()
    assert json_in_process(capsys, "index", str(library))["deleted"] == 16
    _break(breakable_model)
    code, _, err = run_in_process(capsys, "search", "mountain")
    assert (code, err.strip()) == (
        1,
        "findimage: The index is empty: run `findimage index /path/to/pictures` first.",
    )
