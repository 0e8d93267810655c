"""The core slice's "done when", run exactly as a user would run it."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import findimage_json
from tests.support.pictures import make_library


def test_index_search_reindex_and_delete_over_200_pictures(
    tmp_path: Path, findimage_env: dict[str, str]
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, 200)
    env = dict(findimage_env)

    first = findimage_json("index", str(library), env=env, cwd=tmp_path)
    assert (first["indexed"], first["unchanged"], first["skipped"]) == (200, 0, [])

    query = pictures[137]
    (top,) = findimage_json("search", "--image", str(query), "-k", "1", env=env, cwd=tmp_path)[
        "results"
    ]
    assert top["path"] == query.relative_to(library).as_posix()
    assert top["score"] > 0.99

    again = findimage_json("index", str(library), env=env, cwd=tmp_path)
    assert (again["indexed"], again["unchanged"], again["deleted"]) == (0, 200, 0)

    removed = pictures[::20]
    for path in removed:
        path.unlink()
    after = findimage_json("index", str(library), env=env, cwd=tmp_path)
    assert (after["indexed"], after["unchanged"], after["deleted"]) == (0, 190, 10)
    status = findimage_json("status", env=env, cwd=tmp_path)
    assert status["count"] == 190
