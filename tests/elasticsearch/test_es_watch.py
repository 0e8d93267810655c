"""Watch mode on Elasticsearch: what the watcher writes is searchable after its refresh."""

from __future__ import annotations

from pathlib import Path

from findimage.settings import load_settings
from tests.support.pictures import make_library, save
from tests.support.watching import new_picture, watching_library


def test_added_and_deleted_pictures_follow_on_elasticsearch(
    es_env: dict[str, str], tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 3)
    with watching_library(load_settings(), library) as watching:
        assert len(watching.paths()) == 3
        save(new_picture(7), library / "new.png")
        watching.wait_for(lambda: "new.png" in watching.paths(), "the added picture")
        # Searchable, not only stored: the watcher's run ends with a refresh.
        assert watching.store.count() == 4
        gone = sorted(library.rglob("*.jpg"))[0]
        gone.unlink()
        gone_path = gone.relative_to(library).as_posix()
        watching.wait_for(lambda: gone_path not in watching.paths(), "the deleted picture")
        assert watching.store.count() == 3
