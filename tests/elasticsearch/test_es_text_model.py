"""Text vectors from the model deployed in Elasticsearch: in the search, by `_infer`, and what
the user is told when that model is missing or stopped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from findimage.documents import ModelInfo
from findimage.encoders import ClipEncoder
from findimage.errors import BackendUnavailableError
from findimage.factory import build_search_service, build_store
from findimage.query import parse_query
from findimage.search import SearchRequest, SearchService
from findimage.settings import load_settings
from tests.support.es_emulator import ElasticsearchEmulator
from tests.support.es_emulator.ml import TEXT_MODEL_ID
from tests.support.pictures import draw_shape
from tests.support.searches import text_request
from tests.support.store_cases import library_document


def _service(text_vectors: str | None) -> SearchService:
    overrides: dict[str, object] = {}
    if text_vectors is not None:
        overrides = {"es_text_model_id": TEXT_MODEL_ID, "text_vectors": text_vectors}
    return build_search_service(load_settings(**overrides))


@pytest.fixture
def indexed(
    es_env: dict[str, str], tiny_encoder: ClipEncoder, monkeypatch: pytest.MonkeyPatch
) -> SearchService:
    """Six pictures in the emulated cluster, embedded by the tiny CLIP."""
    # The deployed model is the tiny CLIP on PyTorch, as eland deploys PyTorch models; the
    # local side runs PyTorch too, so rankings of these near-tied random-weight vectors
    # compare the two paths rather than two engines.
    monkeypatch.setenv("FINDIMAGE_ENGINE", "torch")
    monkeypatch.setenv("FINDIMAGE_PRECISION", "fp32")
    store = build_store(load_settings())
    store.record_models(
        ModelInfo(tiny_encoder.model_name, tiny_encoder.model_name, tiny_encoder.dims)
    )
    shapes = [(c, s) for c in ("red", "green", "blue") for s in ("circle", "square")]
    pictures = [draw_shape(color, shape) for color, shape in shapes]
    vectors = tiny_encoder.encode_images(pictures)
    docs = [library_document(f"{color}/{shape}.png", i) for i, (color, shape) in enumerate(shapes)]
    store.upsert(list(zip(docs, vectors, strict=True)))
    store.refresh()
    return SearchService(store, tiny_encoder, tiny_encoder, load_settings().max_file_bytes)


@pytest.mark.parametrize("text_vectors", ["query_vector_builder", "infer"])
def test_elasticsearch_text_vectors_find_what_the_local_model_finds(
    indexed: SearchService,
    emulator: ElasticsearchEmulator,
    tiny_encoder: ClipEncoder,
    text_vectors: str,
) -> None:
    emulator.deploy_model(TEXT_MODEL_ID, tiny_encoder.encode_texts)
    local = indexed.search(text_request("a red circle", k=4)).hits
    remote = _service(text_vectors)
    assert [h.document.id for h in remote.search(text_request("a red circle", k=4)).hits] == [
        h.document.id for h in local
    ]
    folder_hits = remote.search(text_request("a red circle", k=4, folder="red")).hits
    assert {h.document.folder for h in folder_hits} == {"red"}
    for mine, theirs in zip(
        remote.search(text_request("blue", k=3)).hits,
        indexed.search(text_request("blue", k=3)).hits,
        strict=True,
    ):
        assert mine.score == pytest.approx(theirs.score, abs=1e-5)


def test_query_vector_builder_embeds_the_text_inside_the_one_search(
    indexed: SearchService, emulator: ElasticsearchEmulator, tiny_encoder: ClipEncoder
) -> None:
    emulator.deploy_model(TEXT_MODEL_ID, tiny_encoder.encode_texts)
    service = _service("query_vector_builder")
    service.search(text_request("green", k=2))
    emulator.requests.clear()
    service.search(text_request("a green square", k=2))
    paths = [r.path for r in emulator.requests]
    assert not any(p.endswith("_infer") for p in paths)
    [search] = [r for r in emulator.requests if r.path.endswith("_search")]
    builder = json.loads(search.body)["knn"]["query_vector_builder"]["text_embedding"]
    assert builder == {"model_id": TEXT_MODEL_ID, "model_text": "a green square"}


def test_infer_sends_the_text_in_text_field(
    indexed: SearchService, emulator: ElasticsearchEmulator, tiny_encoder: ClipEncoder
) -> None:
    emulator.deploy_model(TEXT_MODEL_ID, tiny_encoder.encode_texts)
    _service("infer").search(text_request("a green square", k=2))
    [infer] = [r for r in emulator.requests if r.path.endswith("_infer")]
    assert json.loads(infer.body) == {"docs": [{"text_field": "a green square"}]}


@pytest.mark.parametrize("text_vectors", ["query_vector_builder", "infer"])
def test_a_missing_model_is_one_sentence_naming_eland(
    indexed: SearchService, text_vectors: str
) -> None:
    service = _service(text_vectors)
    with pytest.raises(BackendUnavailableError, match="eland_import_hub_model") as raised:
        service.search(text_request("red", k=2))
    assert service.text_model_problem() == str(raised.value)


def test_a_model_that_is_not_started_says_how_to_start_it(
    indexed: SearchService, emulator: ElasticsearchEmulator
) -> None:
    emulator.deploy_model(TEXT_MODEL_ID, None, state=None)
    service = _service("query_vector_builder")
    problem = service.text_model_problem()
    assert problem is not None
    assert f"_ml/trained_models/{TEXT_MODEL_ID}/deployment/_start" in problem
    with pytest.raises(BackendUnavailableError) as raised:
        service.search(text_request("red", k=2))
    assert str(raised.value) == problem


def test_a_model_stopped_while_serving_is_explained_by_its_state(
    indexed: SearchService, emulator: ElasticsearchEmulator, tiny_encoder: ClipEncoder
) -> None:
    emulator.deploy_model(TEXT_MODEL_ID, tiny_encoder.encode_texts)
    service = _service("query_vector_builder")
    assert service.text_model_problem() is None
    assert service.search(text_request("red", k=1)).hits
    emulator.deploy_model(TEXT_MODEL_ID, tiny_encoder.encode_texts, state="stopping")
    with pytest.raises(BackendUnavailableError, match="is stopping in Elasticsearch"):
        service.search(text_request("red", k=1))
    emulator.deploy_model(TEXT_MODEL_ID, tiny_encoder.encode_texts)
    assert service.search(text_request("red", k=1)).hits


def test_the_local_model_stays_in_use_without_a_model_id(
    indexed: SearchService, emulator: ElasticsearchEmulator, tiny_encoder: ClipEncoder
) -> None:
    assert indexed.text_model_problem() is None
    emulator.requests.clear()
    hits = indexed.search(text_request("red", k=1)).hits
    assert len(hits) == 1
    assert not any("_ml" in r.path for r in emulator.requests)
    [search] = [r for r in emulator.requests if r.path.endswith("_search")]
    knn = json.loads(search.body)["knn"]
    assert "query_vector_builder" not in knn
    np.testing.assert_allclose(
        knn["query_vector"], tiny_encoder.encode_texts(["red"])[0], atol=1e-6
    )


@pytest.mark.parametrize("text_vectors", ["query_vector_builder", "infer"])
def test_the_text_terms_of_a_combined_query_go_in_one_infer_call(
    indexed: SearchService,
    emulator: ElasticsearchEmulator,
    tiny_encoder: ClipEncoder,
    text_vectors: str,
) -> None:
    """`_infer` takes several docs in one request (https://www.elastic.co/docs/api/doc/
    elasticsearch/operation/operation-ml-infer-trained-model: "docs: An array of objects to
    pass to the model for inference"); the vectors are combined here, then one kNN."""
    emulator.deploy_model(TEXT_MODEL_ID, tiny_encoder.encode_texts)
    terms = parse_query("2:a red circle + a green square - blue")
    remote = _service(text_vectors)
    emulator.requests.clear()

    hits = remote.search(SearchRequest(tuple(terms), k=3)).hits

    [infer] = [r for r in emulator.requests if r.path.endswith("_infer")]
    assert json.loads(infer.body) == {
        "docs": [
            {"text_field": "a red circle"},
            {"text_field": "a green square"},
            {"text_field": "blue"},
        ]
    }
    [search] = [r for r in emulator.requests if r.path.endswith("_search")]
    assert "query_vector" in json.loads(search.body)["knn"]
    local = indexed.search(SearchRequest(tuple(terms), k=3)).hits
    assert [h.document.id for h in hits] == [h.document.id for h in local]
