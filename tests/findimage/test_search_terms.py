"""Combined queries in the search service: the normalized weighted sum of the terms' vectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from findimage.documents import ModelInfo, document_id
from findimage.encoders import ClipEncoder
from findimage.errors import ConfigError, NotFoundError
from findimage.query import Term
from findimage.search import SearchRequest, SearchService
from findimage.stores.embedded import EmbeddedStore
from tests.support.documents import make_document
from tests.support.searches import like_request, query_request

DIMS = 4


def _unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


# Two base pictures and the pictures at their sum and their difference.
PLACES = {
    "north.jpg": _unit(1, 0, 0, 0),
    "east.jpg": _unit(0, 1, 0, 0),
    "north-east.jpg": _unit(1, 1, 0, 0),
    "north-west.jpg": _unit(1, -1, 0, 0),
    "far-north-east.jpg": _unit(2, 1, 0, 0),
    "up.jpg": _unit(0, 0, 1, 0),
}


UNUSED = ClipEncoder("/models/never-loaded", "FINDIMAGE_IMAGE_MODEL", device="cpu")


def _id(path: str) -> str:
    return document_id(path)


@pytest.fixture
def compass(tmp_path: Path) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo(UNUSED.model_name, UNUSED.model_name, DIMS))
    store.upsert([(make_document(path), vector) for path, vector in PLACES.items()])
    return store


@pytest.fixture
def service(compass: EmbeddedStore) -> Iterator[SearchService]:
    """A service over the compass pictures; no model ever loads for like: terms."""
    with SearchService(compass, UNUSED, UNUSED, max_file_bytes=1024 * 1024) as opened:
        yield opened


def _paths(service: SearchService, query: str, k: int = 1) -> list[str]:
    hits = service.search(query_request(query, k=k)).hits
    return [hit.document.path for hit in hits]


def test_a_sum_finds_the_picture_between_its_terms_and_leaves_them_out(
    service: SearchService,
) -> None:
    north, east = _id("north.jpg"), _id("east.jpg")
    hits = service.search(query_request(f"like:{north} + like:{east}", k=3)).hits
    assert hits[0].document.path == "north-east.jpg"
    assert hits[0].score == pytest.approx(1.0, abs=1e-6)
    assert {north, east}.isdisjoint(hit.document.id for hit in hits)


def test_a_difference_and_a_weight_move_the_query_where_the_arithmetic_says(
    service: SearchService,
) -> None:
    north, east = _id("north.jpg"), _id("east.jpg")
    assert _paths(service, f"like:{north} - like:{east}") == ["north-west.jpg"]
    assert _paths(service, f"2:like:{north} + like:{east}") == ["far-north-east.jpg"]


def test_a_term_alone_with_a_weight_ranks_as_it_does_without_one(
    service: SearchService,
) -> None:
    """A weight scales a term against the others; alone, it leaves the ranking as it was
    (a weighted term alone goes through the weighted sum, an unweighted one does not)."""
    east = _id("east.jpg")
    unweighted = _paths(service, f"like:{east}", k=5)
    assert _paths(service, f"2:like:{east}", k=5) == unweighted
    assert _paths(service, f"0.5:like:{east}", k=5) == unweighted


def test_like_takes_the_start_of_an_id(service: SearchService) -> None:
    hits = service.search(like_request(_id("up.jpg")[:6], k=2)).hits
    assert hits and all(hit.document.path != "up.jpg" for hit in hits)
    north, east = _id("north.jpg")[:5], _id("east.jpg")[:5]
    assert _paths(service, f"like:{north} + like:{east}") == ["north-east.jpg"]


def _two_paths_sharing_an_id_start(length: int) -> tuple[str, str]:
    """Two file names whose ids start alike (a birthday search: a few hundred names)."""
    seen: dict[str, str] = {}
    for number in range(1_000_000):
        path = f"twin-{number}.jpg"
        start = _id(path)[:length]
        if start in seen:
            return seen[start], path
        seen[start] = path
    raise AssertionError("no two names found")


def test_an_unknown_or_ambiguous_id_is_one_sentence(
    service: SearchService, compass: EmbeddedStore
) -> None:
    with pytest.raises(NotFoundError, match="No picture with id ffff0000 is in the index"):
        service.search(query_request("like:ffff0000 + beach", k=1))
    first, second = _two_paths_sharing_an_id_start(4)
    compass.upsert(
        [(make_document(first), _unit(0, 0, 0, 1)), (make_document(second), _unit(0, 0, 1, 1))]
    )
    shared = _id(first)[:4]
    with pytest.raises(ConfigError, match=f"Several pictures have an id starting with {shared}"):
        service.search(query_request(f"like:{shared} + like:{_id('up.jpg')}", k=1))
    # One more digit tells them apart, when it differs.
    if _id(first)[:5] != _id(second)[:5]:
        assert service.search(like_request(_id(first)[:5], k=1)).hits


def test_terms_that_cancel_out_are_one_sentence(service: SearchService) -> None:
    north = _id("north.jpg")
    with pytest.raises(ConfigError, match="cancel each other out"):
        service.search(query_request(f"like:{north} - like:{north[:8]}", k=1))


def test_text_terms_are_embedded_together_and_combined_with_a_picture(
    tmp_path: Path, tiny_clip: Path
) -> None:
    """The text vectors come from the real (tiny) CLIP; the picture whose stored vector is
    the expected combination is found with a cosine of 1."""
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")
    red, blue = encoder.encode_texts(["red", "blue"])
    north = _unit(*np.resize(np.arange(1.0, 2.0, 1 / encoder.dims), encoder.dims))
    expected = 2 * red - blue + north
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo(encoder.model_name, encoder.model_name, encoder.dims))
    store.upsert(
        [
            (make_document("north.jpg"), north),
            (make_document("expected.jpg"), expected / np.linalg.norm(expected)),
            (make_document("red.jpg"), red),
            (make_document("blue.jpg"), blue),
        ]
    )
    with SearchService(store, encoder, encoder, max_file_bytes=1024 * 1024) as service:
        terms = [
            Term("text", "red", 2.0),
            Term("text", "blue", -1.0),
            Term("like", _id("north.jpg")),
        ]
        (top,) = service.search(SearchRequest(tuple(terms), k=1)).hits
    assert top.document.path == "expected.jpg"
    assert top.score == pytest.approx(1.0, abs=1e-5)
