"""What a watcher says about a library holding a link to a folder outside it (issue 20,
item 17): never the advice to start the index over with --replace, which would wipe it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from findimage.settings import Settings
from tests.support.pictures import make_library, save
from tests.support.watching import new_picture, watching_library


def test_a_change_through_a_link_to_an_outside_folder_is_indexed_without_advising_replace(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    library = tmp_path / "library"
    make_library(library, 4)
    outside = tmp_path / "shared-drive"
    outside.mkdir()
    (library / "shared").symlink_to(outside, target_is_directory=True)
    with caplog.at_level(logging.INFO), watching_library(settings, library) as watching:
        runs = len(watching.runs)

        def answered() -> bool:
            """A run over the change, or a word about why there was none."""
            return len(watching.runs) > runs or any(
                record.levelno >= logging.WARNING for record in caplog.records
            )

        save(new_picture(1), library / "shared" / "added.png")
        watching.wait_for(answered, "a run after the change")
        said = [record.getMessage() for record in caplog.records]
        assert not [line for line in said if "--replace" in line], said
        assert len(watching.runs) > runs
