from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from findimage.documents import ModelInfo, document_id
from findimage.encoders import ClipEncoder
from findimage.errors import ModelLoadError, ModelMismatchError
from findimage.settings import Settings
from findimage.stores.embedded import EmbeddedStore
from indexer.indexer import Indexer
from indexer.scope import LibraryMismatchError
from indexer.shards import Shard, shard_of
from tests.support.pictures import draw_shape, encode, exif_jpeg, make_library, save


class CountingEncoder(ClipEncoder):
    """The real encoder, counting the pictures it is asked to embed."""

    def __init__(self, model: Path):
        super().__init__(str(model), "FINDIMAGE_IMAGE_MODEL", device="cpu", batch_size=8)
        self.encoded = 0
        self.batches: list[int] = []

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.encoded += len(images)
        self.batches.append(len(images))
        return super().encode_images(images)


class ChokingEncoder(CountingEncoder):
    """The real encoder, except that a picture of one shape makes it fail as a model can.

    By shape (width over height), which decoding at the model's input size keeps.
    """

    def __init__(self, model: Path, choke_on_ratio: float):
        super().__init__(model)
        self._choke_on_ratio = choke_on_ratio

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if any(round(image.width / image.height, 1) == self._choke_on_ratio for image in images):
            raise RuntimeError("the model choked on this picture")
        return super().encode_images(images)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    make_library(root, 24)
    return root


@pytest.fixture
def store(settings: Settings) -> EmbeddedStore:
    opened = EmbeddedStore(settings.data_dir)
    yield opened
    opened.close()


@pytest.fixture
def encoder(tiny_clip: Path) -> CountingEncoder:
    return CountingEncoder(tiny_clip)


def _indexer(
    store: EmbeddedStore,
    encoder: ClipEncoder,
    text_model: str,
    max_file_bytes: int = 5 * 1024 * 1024,
) -> Indexer:
    return Indexer(
        store=store,
        image_encoder=encoder,
        models=lambda: ModelInfo(encoder.model_name, text_model, encoder.dims),
        batch_size=5,
        decode_workers=3,
        max_file_bytes=max_file_bytes,
    )


@pytest.fixture
def indexer(store: EmbeddedStore, encoder: CountingEncoder) -> Indexer:
    return _indexer(store, encoder, encoder.model_name)


def _paths(store: EmbeddedStore) -> list[str]:
    return sorted(fp.path for fp in store.fingerprints().values())


def _relative(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_first_run_indexes_every_picture_with_its_metadata(
    indexer: Indexer, store: EmbeddedStore, library: Path, encoder: CountingEncoder
) -> None:
    report = indexer.run(library, progress=False)
    assert (report.indexed, report.unchanged, report.deleted, report.skipped) == (24, 0, 0, [])
    assert encoder.encoded == 24
    assert _paths(store) == _relative(library)
    picture = sorted((library / "trips" / "2024").iterdir())[0]
    doc, vector = store.get(document_id(picture.relative_to(library).as_posix()))
    assert (doc.name, doc.folder) == (picture.name, "trips/2024")
    assert doc.size == (library / doc.path).stat().st_size
    assert (doc.width, doc.height) == Image.open(library / doc.path).size
    assert doc.sha256 and len(doc.sha256) == 64
    assert doc.indexed_at.utcoffset() == timedelta(0)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert store.models() == ModelInfo(encoder.model_name, encoder.model_name, encoder.dims)
    top = sorted(library.glob("*.png"))[0]
    assert store.get(document_id(top.name))[0].folder == ""
    # Pictures go to the model in batches of the configured size (5 here), the last one short.
    assert encoder.batches == [5, 5, 5, 5, 4]


def test_capture_date_and_gps_from_exif_are_stored(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    (library / "dated.jpg").write_bytes(exif_jpeg(when="2024:07:14 09:30:05", gps=True))
    indexer.run(library, progress=False)
    doc, _ = store.get(document_id("dated.jpg"))
    assert doc.taken_at is not None and doc.taken_at.isoformat() == "2024-07-14T09:30:05"
    assert doc.gps is not None
    assert (doc.gps.lat, doc.gps.lon) == pytest.approx((46.5, -(7 + 15 / 60 + 36 / 3600)))


def test_a_link_leading_outside_is_reported_and_the_pictures_after_it_indexed(
    indexer: Indexer, store: EmbeddedStore, library: Path, tmp_path: Path
) -> None:
    outside = save(draw_shape("red", "circle"), tmp_path / "elsewhere" / "secret.png")
    # Named to come first in the walk, so a walk that stopped at it would index nothing.
    (library / "aaa-link.png").symlink_to(outside)
    report = indexer.run(library, progress=False)
    assert [(skip.path, skip.reason) for skip in report.skipped] == [
        ("aaa-link.png", "a symbolic link leading outside the library")
    ]
    assert report.indexed == 24
    assert store.get(document_id("aaa-link.png")) is None


def test_second_run_embeds_nothing(
    indexer: Indexer, library: Path, encoder: CountingEncoder
) -> None:
    indexer.run(library, progress=False)
    encoder.encoded = 0
    report = indexer.run(library, progress=False)
    assert (report.indexed, report.unchanged, report.deleted) == (0, 24, 0)
    assert encoder.encoded == 0


def test_touched_file_with_same_bytes_is_not_embedded_again(
    indexer: Indexer, store: EmbeddedStore, library: Path, encoder: CountingEncoder
) -> None:
    indexer.run(library, progress=False)
    touched = sorted((library / "marketing").iterdir())[0]
    touched_id = document_id(touched.relative_to(library).as_posix())
    os.utime(touched, (2_000_000_000, 2_000_000_000))
    encoder.encoded = 0
    report = indexer.run(library, progress=False)
    assert (report.indexed, report.unchanged) == (0, 24)
    assert encoder.encoded == 0
    assert store.fingerprints()[touched_id].mtime == 2e9
    assert indexer.run(library, progress=False).unchanged == 24


def test_changed_file_is_embedded_again(
    indexer: Indexer, store: EmbeddedStore, library: Path, encoder: CountingEncoder
) -> None:
    indexer.run(library, progress=False)
    changed = sorted((library / "trips" / "2024").iterdir())[0]
    changed_id = document_id(changed.relative_to(library).as_posix())
    before = store.get(changed_id)[1]
    save(draw_shape("black", "triangle", (200, 100)), changed)
    encoder.encoded = 0
    report = indexer.run(library, progress=False)
    assert (report.indexed, report.unchanged) == (1, 23)
    assert encoder.encoded == 1
    doc, after = store.get(changed_id)
    assert (doc.width, doc.height) == (200, 100)
    assert not np.allclose(before, after)


def test_files_gone_from_the_store_are_deleted_from_the_index(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    indexer.run(library, progress=False)
    shutil.rmtree(library / "marketing")
    report = indexer.run(library, progress=False)
    assert report.deleted == 6
    assert _paths(store) == _relative(library)


def test_renamed_file_reuses_its_vector_without_embedding(
    indexer: Indexer, store: EmbeddedStore, library: Path, encoder: CountingEncoder
) -> None:
    indexer.run(library, progress=False)
    source = sorted(library.glob("*.png"))[0]
    old = document_id(source.name)
    vector = store.get(old)[1]
    source.rename(library / "renamed.png")
    encoder.encoded = 0
    report = indexer.run(library, progress=False)
    assert (report.indexed, report.deleted) == (1, 1)
    assert encoder.encoded == 0
    assert store.get(old) is None
    np.testing.assert_array_equal(store.get(document_id("renamed.png"))[1], vector)


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    (library / "empty.jpg").write_bytes(b"")
    (library / "notes.png").write_text("not a picture")
    good = encode(draw_shape("red", "circle", (300, 300)), "JPEG")
    (library / "cut.jpg").write_bytes(good[: len(good) // 3])
    (library / "huge.png").write_bytes(b"\0" * (6 * 1024 * 1024))
    (library / "bomb.png").write_bytes(encode(Image.new("1", (12000, 12000)), "PNG"))
    report = indexer.run(library, progress=False)
    reasons = {skip.path: skip.reason for skip in report.skipped}
    assert set(reasons) == {"empty.jpg", "notes.png", "cut.jpg", "huge.png", "bomb.png"}
    assert "empty" in reasons["empty.jpg"]
    assert "not a picture" in reasons["notes.png"]
    assert "truncated" in reasons["cut.jpg"]
    assert "MB limit" in reasons["huge.png"]
    assert "decompression bomb" in reasons["bomb.png"]
    assert report.indexed == 24
    assert store.count() == 24


def test_a_file_of_exactly_the_size_limit_is_indexed_and_one_byte_more_is_skipped(
    store: EmbeddedStore, encoder: CountingEncoder, tmp_path: Path
) -> None:
    root = tmp_path / "sized"
    root.mkdir()
    picture = encode(draw_shape("red", "circle", (300, 300)), "PNG")
    (root / "exact.png").write_bytes(picture)
    (root / "over.png").write_bytes(picture + b"\0")  # PNG readers ignore what follows IEND
    indexer = _indexer(store, encoder, encoder.model_name, max_file_bytes=len(picture))
    report = indexer.run(root, progress=False)
    assert report.indexed == 1
    assert [(skip.path, "MB limit" in skip.reason) for skip in report.skipped] == [
        ("over.png", True)
    ]
    assert _paths(store) == ["exact.png"]


def test_dry_run_says_what_would_change_and_changes_nothing(
    indexer: Indexer, store: EmbeddedStore, library: Path, encoder: CountingEncoder
) -> None:
    indexer.run(library, progress=False)
    removed = sorted(library.glob("*.png"))[0]
    removed.unlink()
    save(draw_shape("white", "circle"), library / "new" / "added.png")
    encoder.encoded = 0
    report = indexer.run(library, dry_run=True, progress=False)
    assert report.dry_run
    assert report.to_index == ["new/added.png"]
    assert report.to_delete == [removed.name]
    assert encoder.encoded == 0
    assert store.count() == 24


def _snapshot(store: EmbeddedStore) -> dict[str, tuple]:
    """Every indexed document with its vector, to compare a store before and after."""
    snapshot = {}
    for doc_id in store.fingerprints():
        doc, vector = store.get(doc_id)
        snapshot[doc_id] = (doc, vector.tobytes())
    return snapshot


def test_an_index_of_another_model_is_refused_before_anything_is_written(
    store: EmbeddedStore, library: Path, encoder: CountingEncoder
) -> None:
    _indexer(store, encoder, "text-model-a").run(library, progress=False)
    before = _snapshot(store)
    # Work for every kind of write: a new picture, a changed one, a renamed one, a removed one.
    save(draw_shape("white", "circle"), library / "new" / "added.png")
    save(draw_shape("black", "triangle", (200, 100)), sorted(library.glob("*.png"))[0])
    sorted(library.glob("*.png"))[1].rename(library / "renamed.png")
    sorted((library / "marketing").iterdir())[0].unlink()
    encoder.encoded = 0

    with pytest.raises(ModelMismatchError):
        _indexer(store, encoder, "text-model-b").run(library, progress=False)

    assert _snapshot(store) == before
    assert store.models() == ModelInfo(encoder.model_name, "text-model-a", encoder.dims)
    assert encoder.encoded == 0


def test_a_folder_run_refreshes_that_folder_and_leaves_the_rest(
    indexer: Indexer, store: EmbeddedStore, library: Path, encoder: CountingEncoder
) -> None:
    indexer.run(library, progress=False)
    shutil.rmtree(library / "marketing")
    changed = sorted((library / "trips" / "2024").iterdir())[0]
    save(draw_shape("black", "triangle", (200, 100)), changed)
    encoder.encoded = 0
    report = indexer.run(library / "trips" / "2024", progress=False)
    assert (report.indexed, report.unchanged, report.deleted) == (1, 5, 0)
    assert encoder.encoded == 1
    # marketing/ is gone from disk but was not looked at: its pictures stay until a full run.
    assert store.count() == 24
    assert store.library_root() == str(library.resolve())
    assert indexer.run(library, progress=False).deleted == 6


def test_another_library_is_refused_and_replace_starts_over_reusing_vectors(
    indexer: Indexer, store: EmbeddedStore, library: Path, encoder: CountingEncoder, tmp_path: Path
) -> None:
    indexer.run(library, progress=False)
    moved = tmp_path / "moved"
    shutil.copytree(library / "trips", moved)
    with pytest.raises(LibraryMismatchError, match="--replace"):
        indexer.run(moved, progress=False)
    assert store.count() == 24
    encoder.encoded = 0
    report = indexer.run(moved, progress=False, replace=True)
    # The same pictures under new paths: their vectors are reused, nothing is embedded.
    assert (report.indexed, report.deleted, encoder.encoded) == (12, 24, 0)
    assert _paths(store) == _relative(moved)
    assert store.library_root() == str(moved.resolve())


def test_a_run_with_nothing_to_embed_never_loads_the_model(
    indexer: Indexer, store: EmbeddedStore, library: Path, tmp_path: Path, encoder: CountingEncoder
) -> None:
    indexer.run(library, progress=False)
    source = sorted(library.glob("*.png"))[0]
    source.rename(library / "renamed.png")
    os.utime(sorted(library.rglob("*.jpg"))[0], (2_000_000_000, 2_000_000_000))
    # Any load of this model fails; the run must not need one.
    unloadable = ClipEncoder(str(tmp_path / "no-model"), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    report = _indexer(store, unloadable, encoder.model_name).run(library, progress=False)
    assert (report.indexed, report.unchanged, report.deleted) == (1, 23, 1)


def test_a_first_run_whose_model_fails_leaves_no_index(
    settings: Settings, library: Path, tmp_path: Path
) -> None:
    store = EmbeddedStore(settings.data_dir)
    unloadable = ClipEncoder(str(tmp_path / "no-model"), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    with pytest.raises(ModelLoadError):
        _indexer(store, unloadable, "text").run(library, progress=False)
    assert not settings.data_dir.exists()


def test_a_picture_the_model_fails_on_is_skipped_and_its_batch_still_indexed(
    store: EmbeddedStore, library: Path, tiny_clip: Path
) -> None:
    # Five times as wide as high, a shape no picture of the library has.
    save(draw_shape("green", "square", (500, 100)), library / "choke.png")
    encoder = ChokingEncoder(tiny_clip, choke_on_ratio=5.0)
    report = _indexer(store, encoder, encoder.model_name).run(library, progress=False)
    assert [(skip.path, skip.reason) for skip in report.skipped] == [
        ("choke.png", "the model could not encode it (the model choked on this picture)")
    ]
    assert report.indexed == 24
    assert _paths(store) == sorted(set(_relative(library)) - {"choke.png"})


def test_a_picture_renamed_across_shards_is_embedded_when_its_old_entry_went_meanwhile(
    indexer: Indexer,
    store: EmbeddedStore,
    library: Path,
    encoder: CountingEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Worker 2 plans to reuse the vector of a picture renamed out of shard 1; worker 1
    deletes the old entry before worker 2 reads it. The picture is embedded, not skipped."""
    indexer.run(library, progress=False)
    source = sorted(library.glob("*.png"))[0]
    old = source.name
    new = next(
        name
        for name in (f"renamed-{n}.png" for n in range(100))
        if shard_of(name, 2) != shard_of(old, 2)
    )
    vector = store.get(document_id(old))[1]
    source.rename(library / new)
    encoder.encoded = 0
    read = store.get_many

    def other_worker_deletes_first(doc_ids: Sequence[str]) -> dict:
        store.delete(list(doc_ids))
        return read(doc_ids)

    monkeypatch.setattr(store, "get_many", other_worker_deletes_first)

    report = indexer.run(library, progress=False, shard=Shard(shard_of(new, 2), 2))

    assert (report.indexed, report.deleted, report.skipped) == (1, 0, [])
    assert encoder.encoded == 1
    np.testing.assert_allclose(store.get(document_id(new))[1], vector, atol=1e-5)


def test_a_shard_run_deletes_only_its_own_missing_pictures(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    indexer.run(library, progress=False)
    for picture in library.rglob("*.*"):
        picture.unlink()
    gone = _relative_paths_indexed(store)
    first = indexer.run(library, progress=False, shard=Shard(1, 2))
    assert first.deleted == sum(shard_of(path, 2) == 1 for path in gone)
    assert all(shard_of(path, 2) == 2 for path in _relative_paths_indexed(store))
    second = indexer.run(library, progress=False, shard=Shard(2, 2))
    assert first.deleted + second.deleted == len(gone)
    assert store.count() == 0


def _relative_paths_indexed(store: EmbeddedStore) -> list[str]:
    return [fp.path for fp in store.fingerprints().values()]
