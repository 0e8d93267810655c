"""One suite, the same expectations, for every VectorStore: embedded, Elasticsearch on the
emulator, and a real Elasticsearch cluster when FINDIMAGE_TEST_ES_URL names one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from findimage.documents import Fingerprint, GeoPoint, ImageDocument, ModelInfo, document_id
from findimage.errors import ModelMismatchError
from findimage.filters import Filters, Place
from findimage.settings import load_settings
from findimage.stores.base import VectorStore
from findimage.stores.elasticsearch.store import ElasticsearchStore
from findimage.stores.embedded import EmbeddedStore
from tests.support.es_emulator import VERSIONS, ElasticsearchEmulator
from tests.support.store_cases import (
    AFTER,
    BEFORE,
    DIMS,
    LIBRARY,
    MODELS,
    bound_library,
    library_document,
    unit_vector,
)

REAL_CLUSTER = os.environ.get("FINDIMAGE_TEST_ES_URL")


def _elasticsearch_store(url: str, alias: str) -> ElasticsearchStore:
    settings = load_settings(backend="elasticsearch", es_url=url, es_index=alias)
    return ElasticsearchStore.from_settings(settings)


@pytest.fixture(
    params=[
        "embedded",
        *(f"elasticsearch-emulator-{version}" for version in VERSIONS),
        pytest.param(
            "elasticsearch-cluster",
            marks=pytest.mark.skipif(
                not REAL_CLUSTER, reason="set FINDIMAGE_TEST_ES_URL to run against a real cluster"
            ),
        ),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "embedded":
        opened: VectorStore = EmbeddedStore(tmp_path / "data")
        yield opened
        opened.close()
        return
    if request.param.startswith("elasticsearch-emulator-"):
        version = request.param.removeprefix("elasticsearch-emulator-")
        with ElasticsearchEmulator(version=version) as emulator:
            opened = _elasticsearch_store(emulator.url, "findimage-conformance")
            yield opened
            opened.close()
        return
    alias = f"findimage-test-{uuid.uuid4().hex[:8]}"
    opened = _elasticsearch_store(str(REAL_CLUSTER), alias)
    yield opened
    # The store's own client: it speaks the cluster's version, 8.x or 9.x.
    opened.connection.client.indices.delete(index=f"{alias}-*", allow_no_indices=True)
    opened.close()


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.record_models(MODELS)
    assert store.upsert(LIBRARY) == []
    store.refresh()
    return store


def test_a_new_store_is_empty(store: VectorStore) -> None:
    assert store.models() is None
    assert store.count() == 0
    assert store.fingerprints() == {}
    assert store.get(document_id("top.jpg")) is None
    assert store.ids_starting_with(document_id("top.jpg")[:4], 2) == []
    assert store.search(unit_vector([1.0]), 3) == []
    assert store.status().count == 0


def test_ids_are_found_by_their_start_and_only_by_it(filled: VectorStore) -> None:
    ids = sorted(doc.id for doc, _ in LIBRARY)
    for doc_id in ids:
        assert sorted(filled.ids_starting_with(doc_id[:6], 10)) == [
            other for other in ids if other.startswith(doc_id[:6])
        ]
        assert filled.ids_starting_with(doc_id, 10) == [doc_id]
    unused = next(f"{n:x}" for n in range(16) if not any(i.startswith(f"{n:x}") for i in ids))
    assert filled.ids_starting_with(unused, 10) == []
    # A digit every id holds somewhere, but not first, is not a start.
    assert sorted(filled.ids_starting_with(ids[0][1:7], 10)) == [
        other for other in ids if other.startswith(ids[0][1:7])
    ]
    assert len(filled.ids_starting_with(ids[0][0], 1)) == 1


def _dated_library() -> list[tuple[ImageDocument, np.ndarray]]:
    """Pictures taken in Paris and Lyon (EXIF dates and GPS) and scans with only a file date;
    the scans rank first for the query, so a filter applied after ranking would lose hits."""
    file_date = lambda *day: datetime(*day, tzinfo=UTC).timestamp()  # noqa: E731
    return [
        (
            library_document(
                "paris/eiffel.jpg",
                0,
                taken_at=datetime(2024, 6, 3, 10),
                gps=GeoPoint(48.8584, 2.2945),
            ),
            unit_vector([1.0, 0.5]),
        ),
        (
            library_document(
                "paris/louvre.jpg",
                1,
                taken_at=datetime(2025, 1, 31, 23, 59, 59),
                gps=GeoPoint(48.8606, 2.3376),
            ),
            unit_vector([1.0, 0.6]),
        ),
        (
            library_document(
                "lyon/square.jpg",
                2,
                taken_at=datetime(2024, 5, 31, 23, 59, 59),
                gps=GeoPoint(45.7578, 4.8320),
            ),
            unit_vector([1.0, 0.7]),
        ),
        (
            replace(library_document("scan/old.jpg", 3), mtime=file_date(2024, 6, 15)),
            unit_vector([1.0, 0.0]),
        ),
        (
            replace(library_document("scan/new.jpg", 4), mtime=file_date(2025, 3, 1)),
            unit_vector([1.0, 0.1]),
        ),
    ]


PARIS = Place(48.8566, 2.3522, 10)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            Filters(after=datetime(2024, 6, 1)),
            ["scan/old.jpg", "scan/new.jpg", "paris/eiffel.jpg", "paris/louvre.jpg"],
        ),
        (
            Filters(before=datetime(2025, 1, 1)),
            ["scan/old.jpg", "paris/eiffel.jpg", "lyon/square.jpg"],
        ),
        (
            Filters(after=datetime(2024, 6, 1), before=datetime(2025, 2, 1)),
            ["scan/old.jpg", "paris/eiffel.jpg", "paris/louvre.jpg"],
        ),
        (Filters(near=PARIS), ["paris/eiffel.jpg", "paris/louvre.jpg"]),
        (Filters(near=Place(48.8566, 2.3522, 1.2)), ["paris/louvre.jpg"]),
        (Filters(near=PARIS, after=datetime(2025, 1, 1)), ["paris/louvre.jpg"]),
        (
            Filters(near=Place(45.76, 4.83, 500)),
            ["paris/eiffel.jpg", "paris/louvre.jpg", "lyon/square.jpg"],
        ),
    ],
)
def test_date_and_place_filters_keep_the_pictures_of_that_time_and_place(
    store: VectorStore, filters: Filters, expected: list[str]
) -> None:
    store.record_models(MODELS)
    assert store.upsert(_dated_library()) == []
    store.refresh()
    hits = store.search(unit_vector([1.0, 0.0]), 10, filters=filters)
    assert [hit.document.path for hit in hits] == expected
    # Filtered before ranking: the best two that match, not what matches of the best two.
    top_two = store.search(unit_vector([1.0, 0.0]), 2, filters=filters)
    assert [hit.document.path for hit in top_two] == expected[:2]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(after=AFTER), ["on-after", "second-before-before", "on-before"]),
        (Filters(before=BEFORE), ["second-before-after", "on-after", "second-before-before"]),
        (Filters(after=AFTER, before=BEFORE), ["on-after", "second-before-before"]),
    ],
)
def test_after_takes_its_own_moment_and_before_leaves_its_own_out_for_both_dates(
    store: VectorStore, filters: Filters, expected: list[str]
) -> None:
    """`--after` is inclusive and `--before` exclusive, on the EXIF date and on the file
    date, in every store (Elasticsearch: `gte` and `lt`): a picture exactly on a bound."""
    store.record_models(MODELS)
    assert store.upsert(bound_library()) == []
    store.refresh()
    hits = store.search(unit_vector([1.0, 0.0]), 20, filters=filters)
    by_date = [hit.document.path for hit in hits]
    assert by_date == [f"{kind}/{name}.jpg" for name in expected for kind in ("exif", "file")]


def test_filters_and_a_folder_combine(store: VectorStore) -> None:
    store.record_models(MODELS)
    assert store.upsert(_dated_library()) == []
    store.refresh()
    hits = store.search(unit_vector([1.0, 0.0]), 10, "paris", Filters(before=datetime(2025, 1, 1)))
    assert [hit.document.path for hit in hits] == ["paris/eiffel.jpg"]


def test_models_are_recorded_once_and_others_refused(store: VectorStore) -> None:
    store.record_models(MODELS)
    store.record_models(MODELS)
    assert store.models() == MODELS
    with pytest.raises(ModelMismatchError):
        store.record_models(ModelInfo("other-image", "clip-text", DIMS))


def test_search_ranks_by_cosine_with_elasticsearch_scores(filled: VectorStore) -> None:
    query = unit_vector([1.0, 0.15])
    hits = filled.search(query, 3)
    expected = sorted(LIBRARY, key=lambda item: -float(item[1] @ query))[:3]
    assert [hit.document.path for hit in hits] == [doc.path for doc, _ in expected]
    for hit, (_, vector) in zip(hits, expected, strict=True):
        assert hit.score == pytest.approx((1 + float(vector @ query)) / 2, abs=1e-5)


def test_folder_filter_takes_the_folder_and_below_never_a_sibling_prefix(
    filled: VectorStore,
) -> None:
    paths = {hit.document.path for hit in filled.search(unit_vector([1.0]), 10, folder="a/b")}
    assert paths == {"a/b/near.jpg", "a/b/c/deeper.jpg"}
    assert {h.document.path for h in filled.search(unit_vector([1.0]), 10, folder="/a/b/")} == paths
    assert len(filled.search(unit_vector([1.0]), 10, folder="")) == len(LIBRARY)
    assert filled.search(unit_vector([1.0]), 10, folder="nowhere") == []


def test_k_limits_the_hits(filled: VectorStore) -> None:
    assert len(filled.search(unit_vector([1.0]), 2)) == 2
    assert len(filled.search(unit_vector([1.0]), 50)) == len(LIBRARY)


def test_more_than_ten_hits_come_back_when_k_asks_for_them(store: VectorStore) -> None:
    """Elasticsearch answers 10 hits unless the search says how many: k must reach `size`."""
    store.record_models(MODELS)
    many = [
        (library_document(f"many/{i:02d}.jpg", i), unit_vector([1.0, i / 10])) for i in range(25)
    ]
    assert store.upsert(many) == []
    store.refresh()
    query = unit_vector([1.0, 0.5])
    hits = store.search(query, 17)
    expected = sorted(many, key=lambda item: -float(item[1] @ query))[:17]
    assert [hit.document.path for hit in hits] == [doc.path for doc, _ in expected]
    assert len(store.search(query, 25)) == 25


def test_get_many_brings_back_documents_and_vectors_and_skips_unknown_ids(
    filled: VectorStore,
) -> None:
    wanted = [LIBRARY[0], LIBRARY[3]]
    found = filled.get_many([doc.id for doc, _ in wanted] + ["no-such-id"])
    assert set(found) == {doc.id for doc, _ in wanted}
    for doc, vector in wanted:
        assert found[doc.id][0] == doc
        np.testing.assert_allclose(found[doc.id][1], vector, atol=1e-6)


def test_get_returns_the_document_and_its_vector(store: VectorStore) -> None:
    store.record_models(MODELS)
    taken = datetime(2023, 7, 14, 9, 30, 5)
    doc = library_document("trips/beach.jpg", 7, taken_at=taken, gps=GeoPoint(lat=43.25, lon=-1.5))
    vector = unit_vector([0.3, 0.4, 0.5])
    store.upsert([(doc, vector)])
    found = store.get(doc.id)  # realtime: no refresh needed
    assert found is not None
    assert found[0] == doc
    np.testing.assert_allclose(found[1], vector, atol=1e-6)


def test_upsert_replaces_and_delete_ignores_unknown_ids(filled: VectorStore) -> None:
    moved = library_document("top.jpg", 9)
    assert filled.upsert([(moved, unit_vector([0.0, 1.0]))]) == []
    filled.refresh()
    assert filled.count() == len(LIBRARY)
    assert filled.search(unit_vector([0.0, 1.0]), 1)[0].document == moved
    assert filled.delete([moved.id, "no-such-id"]) == []
    filled.refresh()
    assert filled.count() == len(LIBRARY) - 1
    assert filled.get(moved.id) is None


def test_fingerprints_list_every_document(filled: VectorStore) -> None:
    assert filled.fingerprints() == {
        doc.id: Fingerprint(path=doc.path, size=doc.size, mtime=doc.mtime, sha256=doc.sha256)
        for doc, _ in LIBRARY
    }


def test_status_counts_and_names_the_models(filled: VectorStore) -> None:
    status = filled.status()
    assert status.count == len(LIBRARY)
    assert status.models == MODELS
    assert status.last_indexed_at == max(doc.indexed_at for doc, _ in LIBRARY)
