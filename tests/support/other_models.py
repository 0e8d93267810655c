"""A watcher on one model while another process rebuilds the index with another (issue 20,
item 2): what the watcher may write afterwards, on either store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from findimage.factory import build_store
from findimage.settings import load_settings
from tests.support.cli import run_in_process
from tests.support.pictures import make_library, save
from tests.support.watching import new_picture, watching_library

MODEL_SETTINGS = ("FINDIMAGE_IMAGE_MODEL", "FINDIMAGE_TEXT_MODEL")


def watcher_meets_a_rebuild_with_other_models(
    tmp_path: Path,
    other: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    rebuild: Callable[[Path], None],
) -> tuple[list[str], str, str]:
    """Watch a library with the configured models; let `rebuild` rebuild its index with
    `other` ones (the environment names them meanwhile); add a picture.

    Returns the paths the rebuilt index holds once the watcher's burst for that picture
    has run, what the watcher logged for that burst, and the sentence a fresh
    `findimage search` on the watcher's models gives.
    """
    library = tmp_path / "library"
    make_library(library, 3)
    watched = load_settings()
    caplog.set_level(logging.WARNING, logger="indexer.watch")
    with watching_library(watched, library) as watching:
        assert len(watching.paths()) == 3
        for name in MODEL_SETTINGS:
            monkeypatch.setenv(name, str(other))
        rebuild(library)
        save(new_picture(11), library / "added.png")
        watching.wait_for(
            lambda: bool(_warnings(caplog)) or "added.png" in _paths(),
            "the watcher's burst after the rebuild",
        )
        rebuilt = _paths()
    monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", watched.image_model)
    monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", watched.text_model)
    code, _, err = run_in_process(capsys, "search", "red circle")
    assert code == 2, err
    return rebuilt, " ".join(_warnings(caplog)), err.strip().removeprefix("findimage: ")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "indexer.watch"]


def _paths() -> list[str]:
    """What the index holds now, read as a fresh process on the rebuilt index's models would."""
    with closing(build_store(load_settings())) as store:
        return sorted(fp.path for fp in store.fingerprints().values())
