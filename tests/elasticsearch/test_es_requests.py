"""What findimage asks Elasticsearch, request by request (issue 20, item 10): the version probe
within FINDIMAGE_ES_TIMEOUT, one request per search, the mapping read once per run, and a
rebuild of an index made before the date and place fields that fills them."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers

from findimage.search import EMPTY_INDEX
from findimage.settings import load_settings
from findimage.stores.elasticsearch.mapping import FILTER_FIELDS, to_source
from findimage.stores.elasticsearch.store import ElasticsearchStore
from findimage.stores.elasticsearch.writer_lease import leases_index
from tests.support.cli import json_in_process, run_in_process
from tests.support.es_emulator import ElasticsearchEmulator
from tests.support.pictures import exif_jpeg, make_library

ALIAS = "findimage-images"
# The transport's own default, which the probe used whatever the setting said.
TRANSPORT_DEFAULT_TIMEOUT = 10.0


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    make_library(root, 4)
    return root


def _mapping_reads(emulator: ElasticsearchEmulator) -> int:
    """Reads of the image index's mapping (the writer lease's own small index, checked once
    per run for findimage's mark, is not the mapping this counts)."""
    leases = f"/{leases_index(ALIAS)}/"
    return len([r for r in emulator.calls("GET", "/_mapping") if not r.path.startswith(leases)])


def test_the_version_probe_gives_up_after_the_configured_timeout(
    es_env: dict[str, str], emulator: ElasticsearchEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.stall()
    timeout = 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINDIMAGE_ES_TIMEOUT", str(timeout))
        started = time.monotonic()
        code, _, err = run_in_process(capsys, "status")
        waited = time.monotonic() - started
    emulator.stall(False)
    assert code != 0
    assert f"did not answer within {timeout} seconds" in err
    # The probe is the first request: before the fix it waited the transport's 10 s
    # default, not the 1 s the sentence quotes. Far below 10 s even on a busy machine.
    assert waited < TRANSPORT_DEFAULT_TIMEOUT


def test_one_search_is_one_request(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_in_process(capsys, "index", str(library))
    emulator.requests.clear()

    hits = json_in_process(capsys, "search", "red circle", "-k", "2")["results"]

    assert len(hits) == 2
    searches = [r for r in emulator.requests if r.path.endswith("/_search")]
    assert len(searches) == 1
    assert [r for r in emulator.requests if r.path.endswith("/_count")] == []
    # What else a fresh process asks: the version, and the mapping once.
    assert sorted(r.path for r in emulator.requests if r not in searches) == [
        "/",
        f"/{ALIAS}/_mapping",
    ]


def test_an_empty_index_is_still_said_to_be_empty(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_in_process(capsys, "index", str(library))
    for picture in [p for p in library.rglob("*.*") if p.is_file()]:
        picture.unlink()
    assert json_in_process(capsys, "index", str(library))["deleted"] == 4

    code, _, err = run_in_process(capsys, "search", "red circle")

    assert code != 0
    assert EMPTY_INDEX in err


def test_an_indexing_run_reads_the_mapping_once(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert json_in_process(capsys, "index", str(library))["indexed"] == 4
    first_run = _mapping_reads(emulator)
    emulator.requests.clear()
    make_library(library / "more", 2)
    assert json_in_process(capsys, "index", str(library))["indexed"] == 2

    assert first_run == 1
    assert _mapping_reads(emulator) == 1


def _index_made_before_the_filter_fields(es: Elasticsearch, emulator: ElasticsearchEmulator) -> str:
    """Put behind the alias the index an older findimage made: same `_meta`, but no date and
    place fields, and documents without them."""
    [current] = emulator.index_names()
    mapping = emulator.mapping(current)
    for field in FILTER_FIELDS:
        del mapping["properties"][field]
    old = f"{ALIAS}-20200101000000-0a0a0a"
    es.indices.create(index=old, mappings=mapping)
    with closing(ElasticsearchStore.from_settings(load_settings())) as store:
        ids = [hit["_id"] for hit in helpers.scan(es, index=ALIAS, source=False)]
        documents = store.get_many(ids)
    actions = []
    for doc_id, (document, vector) in documents.items():
        source = to_source(document, vector)
        for field in FILTER_FIELDS:
            del source[field]
        actions.append({"_index": old, "_id": doc_id, "_source": source})
    helpers.bulk(es, actions, refresh=True)
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": current, "alias": ALIAS}},
            {"add": {"index": old, "alias": ALIAS}},
        ]
    )
    es.indices.delete(index=current)
    return old


def test_a_rebuild_of_an_index_without_place_fields_fills_them_from_the_files(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    es: Elasticsearch,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (library / "alps.jpg").write_bytes(exif_jpeg(when="2024:06:03 10:00:00", gps=True))
    json_in_process(capsys, "index", str(library))
    near = "--near=46.5,-7.26,5"
    assert [h["path"] for h in json_in_process(capsys, "search", "red", near)["results"]] == [
        "alps.jpg"
    ]
    old = _index_made_before_the_filter_fields(es, emulator)
    code, _, err = run_in_process(capsys, "search", "red", near)
    assert code == 2
    assert "run `findimage index --rebuild`" in err

    report = json_in_process(capsys, "index", "--rebuild", str(library))

    assert report["indexed"] + report["unchanged"] == 5
    assert old not in emulator.index_names()
    found = json_in_process(capsys, "search", "red", near)["results"]
    assert [hit["path"] for hit in found] == ["alps.jpg"]
    dated = json_in_process(capsys, "search", "red", "--after", "2024-06-01", "-k", "10")
    assert "alps.jpg" in [hit["path"] for hit in dated["results"]]
