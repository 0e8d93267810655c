from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from findimage.documents import GeoPoint, ModelInfo, document_id
from findimage.errors import BackendUnavailableError, ModelMismatchError
from findimage.stores.embedded import EmbeddedStore
from tests.support.documents import make_document

DIMS = 8
MODELS = ModelInfo(image_model="img", text_model="txt", dims=DIMS)


def _unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIMS, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    opened = EmbeddedStore(tmp_path / "data")
    yield opened
    opened.close()


def test_upsert_then_search_ranks_by_cosine_with_elasticsearch_scores(store: EmbeddedStore) -> None:
    store.upsert(
        [
            (make_document("a.jpg"), _unit(1, 0)),
            (make_document("b.jpg"), _unit(1, 1)),
            (make_document("c.jpg"), _unit(0, 1)),
            (make_document("d.jpg"), _unit(-1, 0)),
        ]
    )
    hits = store.search(_unit(1, 0.1), k=3)
    assert [hit.document.path for hit in hits] == ["a.jpg", "b.jpg", "c.jpg"]
    cosines = [float(_unit(1, 0.1) @ v) for v in (_unit(1, 0), _unit(1, 1), _unit(0, 1))]
    assert [hit.score for hit in hits] == pytest.approx([(1 + c) / 2 for c in cosines], abs=1e-6)
    assert store.search(_unit(1, 0), k=1)[0].score == pytest.approx(1.0)
    assert store.search(_unit(1, 0), k=10)[-1].score == pytest.approx(0.0, abs=1e-6)


def test_metadata_round_trips(store: EmbeddedStore) -> None:
    doc = make_document(
        "trips/2024/beach.png",
        taken_at=datetime(2024, 7, 14, 9, 30),
        gps=GeoPoint(lat=46.5, lon=-7.25),
        sha256="ab" * 32,
    )
    store.upsert([(doc, _unit(1))])
    found = store.get(doc.id)
    assert found is not None
    assert found[0] == doc
    np.testing.assert_array_equal(found[1], _unit(1))
    assert store.get("no-such-id") is None
    plain = make_document("plain.jpg")
    store.upsert([(plain, _unit(1))])
    assert store.get(plain.id)[0] == plain
    assert (plain.gps, plain.taken_at) == (None, None)


def test_upsert_replaces_and_never_duplicates(store: EmbeddedStore) -> None:
    store.upsert([(make_document("a.jpg"), _unit(1))])
    store.upsert([(make_document("a.jpg", size=999), _unit(0, 1))])
    assert store.count() == 1
    assert store.fingerprints()[document_id("a.jpg")].size == 999
    assert store.search(_unit(0, 1), k=1)[0].score == pytest.approx(1.0)


def test_delete_removes_from_search_and_ignores_unknown_ids(store: EmbeddedStore) -> None:
    store.upsert([(make_document("a.jpg"), _unit(1)), (make_document("b.jpg"), _unit(0, 1))])
    store.delete([document_id("a.jpg"), "unknown"])
    assert store.count() == 1
    assert [hit.document.path for hit in store.search(_unit(1), k=5)] == ["b.jpg"]


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("trips", {"trips/x.jpg", "trips/2024/y.jpg"}),
        ("trips/", {"trips/x.jpg", "trips/2024/y.jpg"}),
        ("trips/2024", {"trips/2024/y.jpg"}),
        ("trip", set()),
        ("", {"top.jpg", "trips/x.jpg", "trips/2024/y.jpg", "tripsandmore/z.jpg"}),
    ],
)
def test_folder_filter_matches_the_folder_and_below_only(
    store: EmbeddedStore, folder: str, expected: set[str]
) -> None:
    store.upsert(
        [
            (make_document(path), _unit(1, i))
            for i, path in enumerate(
                ["top.jpg", "trips/x.jpg", "trips/2024/y.jpg", "tripsandmore/z.jpg"]
            )
        ]
    )
    hits = store.search(_unit(1), k=10, folder=folder or None)
    assert {hit.document.path for hit in hits} == expected


def test_empty_store_searches_to_nothing(store: EmbeddedStore) -> None:
    assert store.search(_unit(1), k=5) == []
    assert store.count() == 0
    assert store.models() is None
    status = store.status()
    assert (status.count, status.models, status.last_indexed_at) == (0, None, None)


def test_models_are_recorded_once_and_others_refused(store: EmbeddedStore) -> None:
    store.record_models(MODELS)
    store.record_models(MODELS)
    assert store.models() == MODELS
    with pytest.raises(ModelMismatchError, match="FINDIMAGE_IMAGE_MODEL"):
        store.record_models(ModelInfo(image_model="other", text_model="txt", dims=DIMS))


def test_query_vector_of_other_dims_is_refused(store: EmbeddedStore) -> None:
    store.upsert([(make_document("a.jpg"), _unit(1))])
    with pytest.raises(ModelMismatchError, match=f"{DIMS + 1} dims .* holds {DIMS}"):
        store.search(np.ones(DIMS + 1, dtype=np.float32), k=1)


def test_reopened_store_keeps_everything(tmp_path: Path) -> None:
    first = EmbeddedStore(tmp_path)
    first.record_models(MODELS)
    first.upsert([(make_document("a.jpg"), _unit(1)), (make_document("b.jpg"), _unit(0, 1))])
    first.close()
    again = EmbeddedStore(tmp_path)
    assert again.count() == 2
    assert again.models() == MODELS
    assert again.search(_unit(0, 1), k=1)[0].document.path == "b.jpg"
    status = again.status()
    assert (status.backend, status.count, status.models) == ("embedded", 2, MODELS)
    assert status.last_indexed_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    again.close()


def test_a_reader_sees_writes_of_another_connection_without_reopening(tmp_path: Path) -> None:
    writer, reader = EmbeddedStore(tmp_path), EmbeddedStore(tmp_path)
    writer.upsert([(make_document("a.jpg"), _unit(1))])
    assert [h.document.path for h in reader.search(_unit(0, 1), k=5)] == ["a.jpg"]
    writer.upsert([(make_document("b.jpg"), _unit(0, 1))])
    assert reader.search(_unit(0, 1), k=1)[0].document.path == "b.jpg"
    writer.delete([document_id("b.jpg")])
    assert [h.document.path for h in reader.search(_unit(0, 1), k=5)] == ["a.jpg"]
    writer.close()
    reader.close()


READER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from findimage.stores.embedded import EmbeddedStore
    store = EmbeddedStore(sys.argv[1])
    target = int(sys.argv[2])
    query = np.zeros(int(sys.argv[3]), dtype=np.float32)
    query[0] = 1.0
    print("ready", flush=True)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        hits = store.search(query, k=target)
        seen.append(len(hits))
        if len(hits) == target:
            break
    print(" ".join(map(str, seen)), flush=True)
    """
)


def test_a_reader_process_searches_while_a_writer_writes(tmp_path: Path) -> None:
    batches, per_batch = 40, 25
    reader = subprocess.Popen(
        [sys.executable, "-c", READER_SCRIPT, str(tmp_path), str(batches * per_batch), str(DIMS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    writer = EmbeddedStore(tmp_path)
    rng = np.random.default_rng(0)
    for batch in range(batches):
        writer.upsert(
            [
                (make_document(f"f{batch}/{i}.jpg"), _unit(*rng.normal(size=DIMS)))
                for i in range(per_batch)
            ]
        )
    out, err = reader.communicate(timeout=120)
    writer.close()
    assert reader.returncode == 0, err
    seen = [int(n) for n in out.split()]
    assert seen[-1] == batches * per_batch
    assert seen == sorted(seen), "a reader never sees the index shrink while it only grows"
    assert all(n % per_batch == 0 for n in seen), "a reader never sees half a batch"


def test_a_long_lived_reader_matches_a_fresh_one_through_random_changes(tmp_path: Path) -> None:
    writer, reader = EmbeddedStore(tmp_path), EmbeddedStore(tmp_path)
    rng = np.random.default_rng(7)
    names = [f"f{i % 3}/p{i}.jpg" for i in range(30)]
    query = _unit(*rng.normal(size=DIMS))
    for step in range(60):
        chosen = rng.choice(names, size=int(rng.integers(1, 6)), replace=False)
        if rng.random() < 0.4:
            writer.delete([document_id(name) for name in chosen])
        else:
            writer.upsert([(make_document(name), _unit(*rng.normal(size=DIMS))) for name in chosen])
        fresh = EmbeddedStore(tmp_path)
        for folder in (None, "f1"):
            expected = fresh.search(query, 30, folder)
            seen = reader.search(query, 30, folder)
            assert [h.document for h in seen] == [h.document for h in expected], step
            assert [h.score for h in seen] == pytest.approx([h.score for h in expected], abs=1e-6)
        fresh.close()
    writer.close()
    reader.close()


def test_an_index_of_another_schema_version_is_one_plain_sentence(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        db.execute("CREATE TABLE images (id TEXT PRIMARY KEY, vector BLOB)")
    with pytest.raises(BackendUnavailableError, match="another version of findimage"):
        EmbeddedStore(tmp_path)


def test_reading_a_missing_index_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = EmbeddedStore(data)
    assert (store.models(), store.library_root(), store.count()) == (None, None, 0)
    assert (store.fingerprints(), store.get("x"), store.search(_unit(1), 3)) == ({}, None, [])
    status = store.status()
    assert status.count == 0
    assert (
        status.location
        == f"{data / 'index.sqlite3'} (not created yet: run `findimage index FOLDER`)"
    )
    store.close()
    assert not data.exists()


def test_an_open_reader_sees_the_index_another_store_creates(tmp_path: Path) -> None:
    reader = EmbeddedStore(tmp_path / "data")
    assert reader.count() == 0
    writer = EmbeddedStore(tmp_path / "data")
    writer.record_models(MODELS)
    writer.upsert([(make_document("a.jpg"), _unit(1))])
    assert reader.count() == 1
    assert [hit.document.path for hit in reader.search(_unit(1), 1)] == ["a.jpg"]
    reader.close()
    writer.close()


def test_the_library_root_is_recorded_and_replaced(store: EmbeddedStore, tmp_path: Path) -> None:
    store.record_models(MODELS)
    store.record_library_root("/pictures")
    store.record_library_root("/elsewhere")
    assert store.library_root() == "/elsewhere"
    reopened = EmbeddedStore(tmp_path / "data")
    assert reopened.library_root() == "/elsewhere"
    assert reopened.status().library_root == "/elsewhere"
    reopened.close()


@pytest.mark.parametrize("k", [1, 2, 50, 200, 500])
@pytest.mark.parametrize("folder", [None, "f1"])
def test_top_k_of_many_comes_back_best_first_exactly_as_a_full_sort(
    store: EmbeddedStore, k: int, folder: str | None
) -> None:
    # numpy's argpartition leaves the top k in no particular order; on some machines it
    # happens to come back sorted for small k, so several k and queries over 1000 rows.
    rng = np.random.default_rng(3)
    paths = [f"f{i % 3}/p{i}.jpg" for i in range(1000)]
    vectors = rng.normal(size=(len(paths), DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.upsert(
        [(make_document(path), vector) for path, vector in zip(paths, vectors, strict=True)]
    )
    inside = [i for i, path in enumerate(paths) if folder is None or path.startswith(folder + "/")]

    for _ in range(5):
        query = _unit(*rng.normal(size=DIMS))
        cosines = vectors @ query
        assert len(np.unique(cosines)) == len(paths), "distinct scores: one right order"
        expected = sorted(inside, key=lambda i: -cosines[i])[:k]

        hits = store.search(query, k=k, folder=folder)

        assert [hit.document.path for hit in hits] == [paths[i] for i in expected]
        assert [hit.score for hit in hits] == pytest.approx(
            [(1 + float(cosines[i])) / 2 for i in expected], abs=1e-6
        )


def test_a_query_vector_may_come_as_one_row(store: EmbeddedStore) -> None:
    store.upsert([(make_document("a.jpg"), _unit(1)), (make_document("b.jpg"), _unit(0, 1))])
    (hit,) = store.search(_unit(0, 1).reshape(1, DIMS), k=1)
    assert hit.document.path == "b.jpg"


def test_a_deleted_picture_leaves_room_for_the_next_best(store: EmbeddedStore) -> None:
    store.upsert(
        [
            (make_document("a.jpg"), _unit(1)),
            (make_document("b.jpg"), _unit(1, 1)),
            (make_document("c.jpg"), _unit(0, 1)),
        ]
    )
    assert store.search(_unit(1), k=2)[0].document.path == "a.jpg"
    store.delete([document_id("a.jpg")])
    # The vectors already in memory drop it too, so k hits are still k hits.
    assert [hit.document.path for hit in store.search(_unit(1), k=2)] == ["b.jpg", "c.jpg"]


def test_status_says_where_the_index_is(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "data")
    store.record_models(MODELS)
    assert store.status().location == str(tmp_path / "data" / "index.sqlite3")
    store.close()


def test_folder_names_are_matched_whole_whatever_their_first_and_last_letters(
    store: EmbeddedStore,
) -> None:
    store.upsert(
        [(make_document("Xmas/a.jpg"), _unit(1)), (make_document("sheets/b.jpg"), _unit(0, 1))]
    )
    assert [hit.document.path for hit in store.search(_unit(1), k=5, folder="Xmas")] == [
        "Xmas/a.jpg"
    ]
    assert [hit.document.path for hit in store.search(_unit(1), k=5, folder="/sheets/")] == [
        "sheets/b.jpg"
    ]


def test_vectors_in_memory_survive_the_index_outgrowing_its_first_capacity(
    tmp_path: Path,
) -> None:
    writer, reader = EmbeddedStore(tmp_path), EmbeddedStore(tmp_path)
    rng = np.random.default_rng(5)
    first = [(make_document(f"early/p{i}.jpg"), _unit(*rng.normal(size=DIMS))) for i in range(1000)]
    writer.upsert(first)
    assert len(reader.search(first[0][1], k=1)) == 1  # the reader now holds 1000 rows
    writer.upsert(
        [(make_document(f"late/p{i}.jpg"), _unit(*rng.normal(size=DIMS))) for i in range(100)]
    )

    # Past 1024 rows the reader's arrays are reallocated; what it held must come along.
    for doc, vector in first[::97]:
        (hit,) = reader.search(vector, k=1)
        assert (hit.document.path, hit.score) == (doc.path, pytest.approx(1.0, abs=1e-6))
        (hit,) = reader.search(vector, k=1, folder="early")
        assert hit.document.path == doc.path
    writer.close()
    reader.close()


def test_the_data_folder_and_its_parents_are_made_by_the_first_write(tmp_path: Path) -> None:
    data = tmp_path / "not" / "there" / "yet"
    store = EmbeddedStore(data)
    store.record_models(MODELS)
    assert (data / "index.sqlite3").is_file()
    store.close()


def test_an_unusable_data_folder_is_one_plain_sentence(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    store = EmbeddedStore(tmp_path / "a-file")
    with pytest.raises(BackendUnavailableError, match="check FINDIMAGE_DATA_DIR"):
        store.record_models(MODELS)


def test_a_float64_vector_is_stored_as_float32(store: EmbeddedStore) -> None:
    store.upsert([(make_document("a.jpg"), _unit(1, 2).astype(np.float64))])
    _, vector = store.get(document_id("a.jpg"))
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, _unit(1, 2), atol=1e-7)
