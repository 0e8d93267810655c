"""findimage never touches an index it did not make (issue 20, item 1): another application's
indices behind the alias, a concrete index of another shape under its name, or one that a
stray document write auto-created, all stay as they were through `index`, `index --rebuild`
and the clean-up of leftovers. Against the emulator, through the real client."""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.support.cli import json_in_process, run_in_process
from tests.support.es_emulator import ElasticsearchEmulator
from tests.support.pictures import make_library

ALIAS = "findimage-images"
EXIT_CONFIG = 2


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    make_library(root, 4)
    return root


def _other_application(es: Elasticsearch, alias: str) -> dict[str, int]:
    """Two indices of another application behind `alias`, a document each; their counts."""
    for year in ("2024", "2025"):
        es.indices.create(
            index=f"otherapp-{year}",
            mappings={"properties": {"title": {"type": "keyword"}}},
            aliases={alias: {}},
        )
        es.index(index=f"otherapp-{year}", id="1", document={"title": year}, refresh=True)
    return _counts(es, "otherapp-*")


def _counts(es: Elasticsearch, pattern: str) -> dict[str, int]:
    found = es.indices.get(index=pattern).body
    return {name: int(es.count(index=name)["count"]) for name in sorted(found)}


def test_rebuild_refuses_another_applications_indices_behind_the_alias(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    es: Elasticsearch,
    library: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINDIMAGE_ES_INDEX", "shared")
    before = _other_application(es, "shared")

    code, _, err = run_in_process(capsys, "index", "--rebuild", str(library))

    assert code == EXIT_CONFIG
    assert "otherapp-2024" in err
    assert "was not created by findimage" in err
    assert len(err.strip().splitlines()) == 1
    assert _counts(es, "otherapp-*") == before == {"otherapp-2024": 1, "otherapp-2025": 1}
    assert emulator.aliases() == {"shared": ["otherapp-2024", "otherapp-2025"]}
    assert emulator.calls("DELETE", "otherapp-2024") == []
    # Nothing of findimage's was left behind either.
    assert emulator.index_names() == ["otherapp-2024", "otherapp-2025"]
    # Plain runs refuse the same way, before writing or deleting anything.
    for args in (("index", str(library)), ("status",)):
        code, _, err = run_in_process(capsys, *args)
        assert (code, "otherapp-2024" in err) == (EXIT_CONFIG, True), args
    assert emulator.calls("POST", "/_bulk") == []


def test_rebuild_refuses_a_foreign_index_beside_findimages_own_behind_the_alias(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    es: Elasticsearch,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_in_process(capsys, "index", str(library))
    [own] = emulator.index_names()
    es.indices.create(index="otherapp-2024", aliases={ALIAS: {}})
    es.index(index="otherapp-2024", id="1", document={"title": "kept"}, refresh=True)
    sorted(library.rglob("*.png"))[0].unlink()

    for args in (("index", "--rebuild", str(library)), ("index", str(library))):
        code, _, err = run_in_process(capsys, *args)
        assert code == EXIT_CONFIG, args
        assert "otherapp-2024" in err, args

    assert emulator.index_names() == sorted([own, "otherapp-2024"])
    assert _counts(es, "otherapp-2024") == {"otherapp-2024": 1}
    # The plain run deleted nothing through the alias either.
    assert int(es.count(index=own)["count"]) == 4


@pytest.mark.parametrize("made_by", ["a mapping of other dims", "a stray document write"])
def test_rebuild_refuses_a_concrete_index_named_like_the_alias(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    es: Elasticsearch,
    library: Path,
    capsys: pytest.CaptureFixture[str],
    made_by: str,
) -> None:
    if made_by == "a mapping of other dims":
        es.indices.create(
            index=ALIAS,
            mappings={"properties": {"vector": {"type": "dense_vector", "dims": 3}}},
        )
        es.index(index=ALIAS, id="x", document={"vector": [1.0, 0.0, 0.0]}, refresh=True)
    else:
        # `PUT /name/_doc/x` on a cluster without that index creates it, with a mapping
        # guessed from the document (action.auto_create_index defaults to true).
        es.index(index=ALIAS, id="x", document={"title": "stray"}, refresh=True)
    mapping_before = emulator.mapping(ALIAS)

    code, _, err = run_in_process(capsys, "index", "--rebuild", str(library))

    assert code == EXIT_CONFIG
    assert f"The Elasticsearch index {ALIAS} was not created by findimage" in err
    assert emulator.index_names() == [ALIAS]
    assert emulator.mapping(ALIAS) == mapping_before
    assert int(es.count(index=ALIAS)["count"]) == 1


def test_leftover_clean_up_deletes_only_indices_carrying_findimages_mark(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    es: Elasticsearch,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_in_process(capsys, "index", str(library))
    # Named the way findimage names a rebuild's index, but made by someone else.
    foreign = f"{ALIAS}-20240101000000-abcdef"
    es.indices.create(index=foreign, mappings={"properties": {"title": {"type": "keyword"}}})
    es.index(index=foreign, id="1", document={"title": "kept"}, refresh=True)

    status = json_in_process(capsys, "status")
    report = json_in_process(capsys, "index", "--rebuild", str(library))

    assert foreign not in status["location"]
    assert report["indexed"] + report["unchanged"] == 4
    assert foreign in emulator.index_names()
    assert int(es.count(index=foreign)["count"]) == 1
    assert emulator.calls("DELETE", foreign) == []
