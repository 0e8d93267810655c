"""On Elasticsearch too, an index knows its library: the root lives in the mapping's findimage
`_meta` beside the models, a folder inside it is refreshed alone, another root is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from findimage.cli import main
from findimage.stores.elasticsearch.versions import VersionedElasticsearch
from tests.support.es_emulator import ElasticsearchEmulator
from tests.support.pictures import draw_shape, make_library, save


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = _run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _findimage_meta(emulator: ElasticsearchEmulator) -> dict:
    # findimage's own client: the plain 9.x one cannot talk to an 8.x cluster.
    with VersionedElasticsearch(emulator.url) as client:
        client.ensure_version(emulator.url, (8, 0))
        (body,) = client.indices.get_mapping(index="findimage-images").body.values()
    return body["mappings"]["_meta"]["findimage"]


def test_the_root_is_kept_in_meta_and_another_root_is_refused(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    library, other = tmp_path / "library", tmp_path / "other"
    make_library(library, 8)
    save(draw_shape("green", "triangle", size=(70, 40)), other / "green.png")
    _json(capsys, "index", str(library))
    meta = _findimage_meta(emulator)
    assert meta["root"] == str(library.resolve())
    # The models beside it are untouched by recording the root.
    assert {"image_model", "text_model", "dims"} <= set(meta)
    assert _json(capsys, "status")["library"] == str(library.resolve())

    code, _, err = _run(capsys, "index", str(other))
    assert code == 2
    assert f"holds the library {library.resolve()}, and {other.resolve()}" in err
    assert "set FINDIMAGE_ES_INDEX to another place" in err and "--replace" in err

    report = _json(capsys, "index", str(other), "--replace")
    assert (report["indexed"], report["deleted"]) == (1, 8)
    assert _findimage_meta(emulator)["root"] == str(other.resolve())
    (hit,) = _json(capsys, "search", "green", "-k", "5")["results"]
    assert hit["location"] == str(other.resolve() / "green.png")


def test_a_folder_is_refreshed_alone_and_a_rebuild_wants_the_whole_library(
    es_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "library"
    make_library(library, 8)
    _json(capsys, "index", str(library))
    (library / "marketing").rename(tmp_path / "moved-away")
    save(draw_shape("black", "circle"), library / "trips" / "new.png")
    report = _json(capsys, "index", str(library / "trips"))
    assert (report["indexed"], report["deleted"]) == (1, 0)
    assert _json(capsys, "status")["count"] == 9

    code, _, err = _run(capsys, "index", str(library / "trips"), "--rebuild")
    assert code == 2 and f"run it on {library.resolve()}" in err
    # Same models: the rebuild copies the vectors and embeds nothing; the moved-away folder
    # leaves the index now that the whole library was looked at.
    report = _json(capsys, "index", "--rebuild")
    assert (report["indexed"], report["unchanged"], report["deleted"]) == (0, 7, 2)
    assert _json(capsys, "status")["library"] == str(library.resolve())
