from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from findimage.documents import ModelInfo, document_id
from findimage.encoders import ClipEncoder
from findimage.errors import ConfigError, IndexEmptyError, ModelMismatchError, NotFoundError
from findimage.filters import Filters
from findimage.images import DECODE_MIN_SIDE, UNREADABLE, decode_image
from findimage.search import PictureError, SearchService
from findimage.stores.embedded import EmbeddedStore
from tests.support.documents import make_document
from tests.support.fitting import CountingTextEncoder
from tests.support.pictures import draw_shape, encode
from tests.support.searches import like_request, picture_request, query_request, text_request

DIMS = 8


def _unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIMS, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def test_a_text_query_loads_only_the_text_model(tmp_path: Path, tiny_clip: Path) -> None:
    text = ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")
    image = ClipEncoder("/models/never-loaded", "FINDIMAGE_IMAGE_MODEL", device="cpu")
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo(image.model_name, text.model_name, text.dims))
    vectors = text.encode_texts(["red", "blue"])
    store.upsert([(make_document("red.png"), vectors[0]), (make_document("blue.png"), vectors[1])])
    service = SearchService(store, image, text, max_file_bytes=1024 * 1024)

    # The image model cannot load: a text query that tried to would fail with ModelLoadError.
    hits = service.search(text_request("red", k=1)).hits

    assert [hit.document.path for hit in hits] == ["red.png"]
    store.close()


def test_an_index_of_other_models_is_refused_by_name(tmp_path: Path, tiny_clip: Path) -> None:
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo("another-image-model", encoder.model_name, encoder.dims))
    store.upsert(
        [(make_document("a.png"), encoder.encode_images([draw_shape("red", "circle")])[0])]
    )
    service = SearchService(store, encoder, encoder, max_file_bytes=1024 * 1024)
    with pytest.raises(ModelMismatchError, match="another-image-model"):
        service.search(text_request("red", k=1))
    store.close()


def _service_over(store: EmbeddedStore, encoder: ClipEncoder | None = None) -> SearchService:
    """A service whose encoders are never loaded unless `encoder` is given; the store is
    marked as built with those models, as an index made by `findimage index` would be (a
    store with no models recorded is an empty index to the service)."""
    unused = ClipEncoder("/models/never-loaded", "FINDIMAGE_IMAGE_MODEL", device="cpu")
    text = encoder or unused
    if store.count():
        dims = encoder.dims if encoder is not None else DIMS
        store.record_models(ModelInfo(unused.model_name, text.model_name, dims))
    return SearchService(store, unused, text, max_file_bytes=1024 * 1024)


@pytest.fixture
def fanned_store(tmp_path: Path) -> EmbeddedStore:
    """a.jpg, then b.jpg to f.jpg at growing angles from it: each one less like a.jpg."""
    store = EmbeddedStore(tmp_path)
    store.upsert(
        [
            (make_document(f"{name}.jpg"), _unit(1, slope))
            for name, slope in zip("abcdef", (0, 0.1, 0.3, 0.6, 1, 3), strict=True)
        ]
    )
    yield store
    store.close()


def test_like_gives_the_nearest_other_pictures_page_by_page(fanned_store: EmbeddedStore) -> None:
    service = _service_over(fanned_store)
    like_a = document_id("a.jpg")

    def paths(k: int, offset: int = 0) -> list[str]:
        return [
            hit.document.path
            for hit in service.search(like_request(like_a, k=k, offset=offset)).hits
        ]

    assert paths(2) == ["b.jpg", "c.jpg"]
    assert paths(2, offset=2) == ["d.jpg", "e.jpg"]
    assert paths(10) == ["b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
    assert paths(10, offset=4) == ["f.jpg"]


def test_like_of_a_picture_not_in_the_index_says_so(fanned_store: EmbeddedStore) -> None:
    with pytest.raises(NotFoundError, match="No picture with id nope is in the index"):
        _service_over(fanned_store).search(like_request("nope", k=3))


def test_text_results_page_on_from_the_offset(tmp_path: Path, tiny_clip: Path) -> None:
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")
    store = EmbeddedStore(tmp_path)
    words = ["red", "blue", "green", "yellow", "black"]
    store.upsert(
        [
            (make_document(f"{w}.png"), v)
            for w, v in zip(words, encoder.encode_texts(words), strict=True)
        ]
    )
    service = _service_over(store, encoder)
    ranked = [hit.document.path for hit in store.search(encoder.encode_texts(["red"])[0], k=5)]

    first = service.search(text_request("red", k=2)).hits
    second = service.search(text_request("  red ", k=2, offset=2)).hits

    assert [hit.document.path for hit in first + second] == ranked[:4]
    store.close()


def test_an_empty_index_and_an_empty_query_are_each_one_sentence(
    tmp_path: Path, tiny_clip: Path
) -> None:
    store = EmbeddedStore(tmp_path)
    service = _service_over(store, ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL"))
    with pytest.raises(ConfigError, match="Say what to look for"):
        service.search(text_request("   ", k=1))
    with pytest.raises(IndexEmptyError, match="run `findimage index /path/to/pictures` first"):
        service.search(text_request("red", k=1, offset=1))
    store.close()


def test_text_search_stays_inside_the_folder_asked_for(tmp_path: Path, tiny_clip: Path) -> None:
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")
    store = EmbeddedStore(tmp_path)
    words = ["red", "blue", "green", "yellow"]
    paths = ["trips/red.png", "blue.png", "trips/2024/green.png", "marketing/yellow.png"]
    store.upsert(
        [(make_document(p), v) for p, v in zip(paths, encoder.encode_texts(words), strict=True)]
    )
    service = _service_over(store, encoder)

    hits = service.search(text_request("red", k=4, folder="trips")).hits

    assert {hit.document.path for hit in hits} == {"trips/red.png", "trips/2024/green.png"}
    # A folder with nothing in it finds nothing; the index itself is not empty.
    assert service.search(text_request("red", k=4, folder="nowhere")).hits == []
    store.close()


def test_like_stays_inside_the_folder_asked_for(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    store.upsert(
        [
            (make_document("x/a.jpg"), _unit(1)),
            (make_document("y/nearest.jpg"), _unit(1, 0.1)),
            (make_document("x/further.jpg"), _unit(1, 1)),
        ]
    )
    hits = _service_over(store).search(like_request(document_id("x/a.jpg"), k=2, folder="x")).hits
    assert [hit.document.path for hit in hits] == ["x/further.jpg"]
    store.close()


def test_an_index_of_one_picture_searched_in_an_empty_folder_is_not_called_empty(
    tmp_path: Path,
) -> None:
    """Only an index of no pictures is empty: one picture, outside the folder asked for,
    gives no hits and no "index is empty" sentence."""
    store = EmbeddedStore(tmp_path)
    store.upsert([(make_document("x/a.jpg"), _unit(1))])
    request = like_request(document_id("x/a.jpg"), k=3, folder="y")
    assert _service_over(store).search(request).hits == []
    store.close()


def test_like_keeps_only_the_pictures_the_filters_keep(tmp_path: Path) -> None:
    """The request's filters reach the store on the vector path (picture, like, combined and
    local text searches all take it), not only the folder."""
    store = EmbeddedStore(tmp_path)
    store.upsert(
        [
            (make_document("a.jpg", taken_at=datetime(2024, 6, 1)), _unit(1)),
            (make_document("nearest.jpg", taken_at=datetime(2023, 6, 1)), _unit(1, 0.1)),
            (make_document("further.jpg", taken_at=datetime(2024, 7, 1)), _unit(1, 1)),
        ]
    )
    request = like_request(document_id("a.jpg"), k=2, filters=Filters(after=datetime(2024, 1, 1)))
    hits = _service_over(store).search(request).hits
    assert [hit.document.path for hit in hits] == ["further.jpg"]
    store.close()


def _one_red_picture(
    tmp_path: Path, tiny_clip: Path
) -> tuple[ClipEncoder, EmbeddedStore, ClipEncoder]:
    """A store holding "red.png" (its vector the text "red"), with the models recorded as an
    index would; the text encoder, the store and an image encoder that is never loaded."""
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")
    store = EmbeddedStore(tmp_path)
    store.upsert([(make_document("red.png"), encoder.encode_texts(["red"])[0])])
    _service_over(store, encoder)
    unused = ClipEncoder("/models/never-loaded", "FINDIMAGE_IMAGE_MODEL", device="cpu")
    return encoder, store, unused


def test_a_long_query_is_fitted_once_and_the_outcome_says_it_was_cut(
    tmp_path: Path, tiny_clip: Path
) -> None:
    encoder, store, unused = _one_red_picture(tmp_path, tiny_clip)
    counting = CountingTextEncoder(encoder)
    service = SearchService(store, unused, counting, max_file_bytes=1024 * 1024)
    long_query = " ".join(["a red circle"] * 30)

    outcome = service.search(text_request(long_query, k=1))

    assert counting.fitted == [long_query]
    fitted = encoder.fit_text(long_query)
    assert fitted.cut and outcome.description == fitted.text
    assert outcome.cut_note == (
        f"the description was too long for the text model ({fitted.max_tokens} tokens at "
        f"most), so I searched for “{fitted.text}”."
    )
    assert [hit.document.path for hit in outcome.hits] == ["red.png"]
    store.close()


class _SelfTruncatingTextEncoder:
    """A text model that cuts long texts on its own side, as Elasticsearch's does: it has no
    `fit_text`, so the service cannot say what it read."""

    def __init__(self, inner: ClipEncoder):
        self.model_name = inner.model_name
        self._inner = inner

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        # Its own side reads what fits its length, unseen by the service.
        return self._inner.encode_texts([self._inner.fit_text(text).text for text in texts])


def test_a_text_model_that_cuts_on_its_own_side_gets_the_text_as_typed_and_no_cut_note(
    tmp_path: Path, tiny_clip: Path
) -> None:
    encoder, store, unused = _one_red_picture(tmp_path, tiny_clip)
    service = SearchService(
        store, unused, _SelfTruncatingTextEncoder(encoder), max_file_bytes=1024 * 1024
    )
    long_query = " ".join(["a red circle"] * 30)

    outcome = service.search(text_request(long_query, k=1))

    assert outcome.description == long_query
    assert outcome.cut_note is None
    assert [hit.document.path for hit in outcome.hits] == ["red.png"]
    store.close()


def test_a_bad_picture_is_told_before_the_index_is_read_and_a_good_one_loads_no_model(
    tmp_path: Path,
) -> None:
    """Neither encoder can load: a search that tried would fail with ModelLoadError."""
    store = EmbeddedStore(tmp_path)
    service = _service_over(store)

    with pytest.raises(PictureError, match="That picture cannot be used: ") as raised:
        service.search(picture_request(b"not a picture", "note.jpg", k=1))
    assert (raised.value.name, raised.value.reason) == ("note.jpg", UNREADABLE)
    with pytest.raises(IndexEmptyError):
        service.search(picture_request(encode(draw_shape("red", "circle"), "PNG"), k=1))
    store.close()


def test_the_description_writes_the_terms_back_as_searched(fanned_store: EmbeddedStore) -> None:
    service = _service_over(fanned_store)
    a, b = document_id("a.jpg"), document_id("b.jpg")[:6]

    outcome = service.search(query_request(f"- 0.5:like:{b} + 2:like:{a}", k=1))

    assert outcome.description == f"- 0.5:like:{b} + 2:like:{a}"
    assert outcome.cut_note is None


def test_a_query_picture_is_seen_as_the_indexer_saw_its_copy(
    tmp_path: Path, tiny_clip: Path
) -> None:
    """The indexer decodes at the image model's own side (32 pixels for the tiny CLIP), not
    at the 224 a picture is first decoded at: the same JPEG finds its copy at a cosine of 1."""
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    # Blocks of random colors: their edges come out differently from each decoding size.
    blocks = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((30, 30, 1), dtype=np.uint8))
    photo = encode(Image.fromarray(pixels), "JPEG", quality=70)
    indexed = decode_image(photo, 1024 * 1024 * 1024, encoder.input_side).image
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo(encoder.model_name, encoder.model_name, encoder.dims))
    store.upsert([(make_document("copy.jpg"), encoder.encode_images([indexed])[0])])
    service = SearchService(store, encoder, encoder, max_file_bytes=1024 * 1024 * 1024)

    (hit,) = service.search(picture_request(photo, k=1)).hits

    assert encoder.input_side != DECODE_MIN_SIDE
    assert hit.score == pytest.approx(1.0, abs=1e-6)
    store.close()
