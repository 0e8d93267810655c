"""The command line as a new user meets it (issue 22): `--version`, `--in` written the way a
shell shows folders, a folder with no pictures, skipped files named once, and the models
prepared once per user, said in one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from findimage import encoders
from findimage.cli import main
from findimage.encoders import OnnxEncoder
from findimage.inference.export import EXPORT_FORMAT, META_FILE, export_folder
from tests.support.cli import json_in_process, run_in_process
from tests.support.pictures import make_library


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str]) -> Path:
    root = tmp_path / "Pictures"
    make_library(root, 16)
    return root


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"findimage {version('findimage')}\n"


def _folders(capsys: pytest.CaptureFixture[str], *args: str) -> set[str]:
    """The folders of every picture a search with these arguments finds (all of them)."""
    found = json_in_process(capsys, "search", "red circle", "-k", "16", *args)
    return {result["path"].rpartition("/")[0] for result in found["results"]}


def test_in_takes_a_folder_from_the_library_root_from_here_or_as_an_absolute_path(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    json_in_process(capsys, "index", str(library))
    elsewhere = library.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # From the library's root, wherever the command runs.
    assert _folders(capsys, "--in", "trips/2024") == {"trips/2024"}
    # An absolute folder inside the library, as results print it.
    assert _folders(capsys, "--in", str(library / "trips" / "2024")) == {"trips/2024"}
    assert _folders(capsys, "--in", str(library / "trips")) == {"trips", "trips/2024"}
    # From the current folder: inside Pictures/trips, `--in 2024` is trips/2024.
    monkeypatch.chdir(library / "trips")
    assert _folders(capsys, "--in", "2024") == {"trips/2024"}
    assert _folders(capsys, "--in", ".") == {"trips", "trips/2024"}
    assert _folders(capsys, "--in", "../marketing") == {"marketing"}
    # A name that is no folder here is read from the library's root.
    assert _folders(capsys, "--in", "marketing") == {"marketing"}
    # The library's root itself is the whole library.
    assert len(_folders(capsys, "--in", str(library))) == 4


def test_in_refuses_an_absolute_folder_outside_the_library_in_one_sentence(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    outside = library.parent / "elsewhere"
    outside.mkdir()
    code, out, err = run_in_process(capsys, "search", "red", "--in", str(outside))
    assert (code, out) == (2, "")
    assert err == (
        f"findimage: {outside} is not inside the library {library}: give a folder inside it, "
        "as a path or from the library's root like marketing/2024.\n"
    )


def test_a_folder_with_no_pictures_says_so_and_exits_0(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    (library / "empty").mkdir()
    # A first search prepares the text model if no earlier test of this run did (its
    # one-time "Preparing the text model ..." line is not what this test is about).
    assert run_in_process(capsys, "search", "red")[0] == 0
    for folder in ("empty", str(library / "empty")):
        code, out, err = run_in_process(capsys, "search", "red", "--in", folder)
        assert (code, err) == (0, "")
        assert out == (
            "The library has no pictures in a folder “empty”: check the name after --in, "
            "from the library's root or as a path.\n"
        )
    # A folder the library does not have at all is a mistake, named as such (exit 2).
    code, out, err = run_in_process(capsys, "search", "red", "--in", "no-such-folder")
    assert (code, out) == (2, "")
    assert "has no folder no-such-folder" in err


def test_a_skipped_file_is_named_once_not_on_every_run(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (library / "broken.jpg").write_bytes(b"not a picture")
    first = run_in_process(capsys, "index", str(library))[1].splitlines()
    assert first[0] == "Indexed 16, unchanged 0, removed 0, skipped 1."
    assert first[1].startswith("  skipped broken.jpg: ")

    again = run_in_process(capsys, "index", str(library))[1].splitlines()
    assert again == [
        "Indexed 0, unchanged 16, removed 0, skipped 1.",
        "  (1 skipped as on the last run, for the same reason; `findimage index --json` "
        "names them.)",
    ]
    # --json still lists every skipped file.
    assert [s["path"] for s in json_in_process(capsys, "index", str(library))["skipped"]] == [
        "broken.jpg"
    ]
    # A second broken file is new, and named; the first one is not named again.
    (library / "trips" / "broken.png").write_bytes(b"")
    third = run_in_process(capsys, "index", str(library))[1].splitlines()
    assert [line for line in third if "skipped " in line and ":" in line] == [
        "  skipped trips/broken.png: the file is empty"
    ]


def test_the_models_are_prepared_once_per_user_and_the_first_run_says_so(
    library: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No cache setting: the default, in this user's cache folder.
    monkeypatch.delenv("FINDIMAGE_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FINDIMAGE_DATA_DIR", str(tmp_path / "first-index"))
    code, _, first = run_in_process(capsys, "index", str(library))
    assert code == 0, first
    preparing = [line for line in first.splitlines() if line.startswith("Preparing")]
    assert len(preparing) == 1, first
    assert "image model" in preparing[0] and "once" in preparing[0]

    # A second index (another data dir) of the same user uses the same export.
    monkeypatch.setenv("FINDIMAGE_DATA_DIR", str(tmp_path / "second-index"))
    code, _, second = run_in_process(capsys, "index", str(library))
    assert code == 0, second
    assert "Preparing" not in second
    assert any((tmp_path / "cache" / "findimage" / "models").iterdir())
    assert not (tmp_path / "first-index" / "models").exists()


def test_an_int8_fall_back_found_in_the_cache_is_not_warned_about_again(
    tiny_clip: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The warning belongs to the run that made the export; later ones run fp32 quietly."""
    # As in a new process: what another test in this worker already said is not remembered.
    monkeypatch.setattr(encoders, "_FALLBACKS_SAID", set())
    cache = tmp_path / "cache"
    # What an earlier run left for an int8 export that did not agree: its record, no model.
    record = export_folder(cache, str(tiny_clip), "image", "int8")
    record.mkdir(parents=True)
    meta = {"format": EXPORT_FORMAT, "model": str(tiny_clip), "agreement": 0.99, "files": {}}
    (record / META_FILE).write_text(json.dumps(meta))

    encoder = OnnxEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", "image", "int8", cache, 1)
    with caplog.at_level(logging.INFO, logger="findimage"):
        encoder.load()

    assert encoder.precision == "fp32"
    falls_back = [r for r in caplog.records if "at fp32 instead" in r.getMessage()]
    assert [r.levelno for r in falls_back] == [logging.INFO]


OFFLINE_INDEX = """
import json, sys
from findimage.cli import main
code = main(["-v", "index", sys.argv[1]])
heavy = sorted(name for name in ("torch", "sentence_transformers") if name in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def test_offline_with_no_cached_model_index_stops_in_one_line_before_importing_pytorch(
    tmp_path: Path,
) -> None:
    library = tmp_path / "Pictures"
    make_library(library, 8)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FINDIMAGE_"))}
    # Port 9 on loopback has no listener: refused at once, as a machine offline.
    env |= {
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "empty-hf-cache"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "FINDIMAGE_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_INDEX, str(library)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"code": 1, "heavy": []}
    lines = done.stderr.splitlines()
    # Each picture's decode asks for the model; the hub is tried once and said once.
    assert [line for line in lines if "not cached; downloading it" in line] == [
        "INFO findimage.encoders: model clip-ViT-B-32 is not cached; downloading it"
    ]
    [sentence] = [line for line in lines if line.startswith("findimage: ")]
    assert sentence.startswith(
        "findimage: Could not load the model 'clip-ViT-B-32': it is not cached and 127.0.0.1 "
        "cannot be reached"
    )
    assert not [line for line in lines if line.startswith("Preparing")]
