"""What only the Elasticsearch store does: its mapping, the alias, bulk failures, connection
settings, and one plain sentence for every way the cluster can be unusable."""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from elasticsearch import Elasticsearch

from bot.errors import BackendUnavailableError, ConfigError, ModelMismatchError
from bot.settings import load_settings
from bot.stores.elasticsearch import ElasticsearchStore
from bot.stores.es_mapping import VectorIndexOptions
from tests.elasticsearch.test_store_conformance import LIBRARY, MODELS, _unit
from tests.support.es_emulator import ElasticsearchEmulator

ALIAS = "findimage-images"


def _store(url: str, **settings: object) -> ElasticsearchStore:
    return ElasticsearchStore.from_settings(
        load_settings(backend="elasticsearch", es_url=url, **settings)
    )


@pytest.fixture
def store(emulator: ElasticsearchEmulator) -> Iterator[ElasticsearchStore]:
    opened = _store(emulator.url)
    yield opened
    opened.close()


def _bodies(emulator: ElasticsearchEmulator, suffix: str) -> list[dict]:
    return [json.loads(r.body) for r in emulator.requests if r.path.endswith(suffix) and r.body]


@pytest.mark.parametrize(
    ("index_type", "m", "ef_construction"),
    [("hnsw", 16, 100), ("int8_hnsw", 24, 200), ("bbq_hnsw", 32, 300)],
)
def test_the_mapping_states_the_vector_options_and_the_field_types(
    emulator: ElasticsearchEmulator, index_type: str, m: int, ef_construction: int
) -> None:
    store = _store(
        emulator.url,
        es_index_type=index_type,
        es_hnsw_m=m,
        es_hnsw_ef_construction=ef_construction,
    )
    store.record_models(MODELS)
    mapping = emulator.mapping(ALIAS)
    assert mapping["properties"]["vector"] == {
        "type": "dense_vector",
        "dims": MODELS.dims,
        "similarity": "cosine",
        "index": True,
        "index_options": {"type": index_type, "m": m, "ef_construction": ef_construction},
    }
    types = {name: spec["type"] for name, spec in mapping["properties"].items()}
    assert {types[f] for f in ("id", "path", "name", "folder", "sha256")} == {"keyword"}
    assert types["taken_at"] == types["indexed_at"] == "date"
    assert types["gps"] == "geo_point"
    assert mapping["_meta"]["findimage"] == {
        "image_model": MODELS.image_model,
        "text_model": MODELS.text_model,
        "dims": MODELS.dims,
        "engine": MODELS.engine,
        "precision": MODELS.precision,
    }


def test_writes_go_through_the_alias_to_one_concrete_index(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    [concrete] = emulator.index_names()
    assert concrete.startswith(f"{ALIAS}-")
    assert emulator.aliases() == {ALIAS: [concrete]}
    bulk = [r for r in emulator.requests if r.path.endswith("_bulk")]
    assert bulk and all(r.params.get("require_alias") == "true" for r in bulk)


def test_knn_asks_for_k_times_the_factor_candidates_and_only_the_result_fields(
    emulator: ElasticsearchEmulator,
) -> None:
    store = _store(emulator.url, es_num_candidates_factor=7)
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.search(_unit([1.0]), 3, folder="a/b")
    store.search(_unit([1.0]), 5000)
    first, big = (body for body in _bodies(emulator, "_search") if "knn" in body)
    assert first["knn"]["k"] == 3
    assert first["knn"]["num_candidates"] == 21
    assert first["knn"]["filter"]["bool"]["minimum_should_match"] == 1
    assert "vector" not in first["_source"]["includes"]
    assert big["knn"]["num_candidates"] == 10_000


def test_the_models_are_checked_against_the_mapping_at_start(
    emulator: ElasticsearchEmulator,
) -> None:
    with Elasticsearch(emulator.url) as es:
        es.indices.create(
            index="skewed",
            mappings={
                "_meta": {"findimage": {"image_model": "a", "text_model": "b", "dims": 8}},
                "properties": {"vector": {"type": "dense_vector", "dims": 4}},
            },
        )
        es.indices.create(index="foreign", mappings={"properties": {"x": {"type": "keyword"}}})
    with pytest.raises(ModelMismatchError, match="rebuild"):
        _store(emulator.url, es_index="skewed").models()
    with pytest.raises(ConfigError, match="not created by findimage"):
        _store(emulator.url, es_index="foreign").models()


def _patient(store: ElasticsearchStore, retries: int) -> ElasticsearchStore:
    """The same store with quick bulk back-offs, so the retries take milliseconds."""
    return ElasticsearchStore(
        store.connection,
        ALIAS,
        VectorIndexOptions(),
        bulk_retries=retries,
        bulk_backoff_seconds=0.01,
    )


def test_rejected_items_are_retried_until_they_pass(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    patient = _patient(store, retries=3)
    patient.record_models(MODELS)
    emulator.reject_bulk_items(4)
    assert patient.upsert(LIBRARY) == []
    assert patient.count() == len(LIBRARY)


def test_items_still_rejected_after_the_retries_come_back_with_the_reason(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    patient = _patient(store, retries=1)
    patient.record_models(MODELS)
    emulator.reject_bulk_items(2)
    failures = patient.upsert(LIBRARY[:1])
    assert [f.doc_id for f in failures] == [LIBRARY[0][0].id]
    assert "es_rejected_execution_exception" in failures[0].reason
    assert patient.count() == 0


def test_a_search_during_an_outage_fails_fast_and_works_once_elasticsearch_is_back(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    emulator.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="Cannot reach Elasticsearch"):
        store.search(_unit([1.0]), 3)
    assert time.monotonic() - started < 2
    emulator.start()
    assert len(store.search(_unit([1.0]), 3)) == 3


def test_a_cluster_that_does_not_answer_is_given_up_after_the_timeout(
    emulator: ElasticsearchEmulator,
) -> None:
    store = _store(emulator.url, es_timeout=0.3)
    emulator.stall()
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=r"did not answer within 0\.3 seconds"):
        store.count()
    assert time.monotonic() - started < 3
    emulator.stall(False)


def test_api_key_and_basic_auth_are_sent_and_bad_ones_explained_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with ElasticsearchEmulator(api_key="R09PRC1LRVk=", basic_auth=("finder", "s3cret")) as secured:
        assert _store(secured.url, es_api_key="R09PRC1LRVk=").count() == 0
        assert _store(secured.url, es_user="finder", es_password="s3cret").count() == 0
        with pytest.raises(ConfigError) as wrong_key:
            _store(secured.url, es_api_key="V1JPTkctS0VZ").count()
        with pytest.raises(ConfigError) as wrong_password:
            _store(secured.url, es_user="finder", es_password="hunter2").count()
        url_with_password = secured.url.replace("://", "://finder:hunter2@")
        with pytest.raises(ConfigError) as in_url:
            _store(url_with_password).count()
    for raised in (wrong_key, wrong_password, in_url):
        assert "refused the credentials" in str(raised.value)
    shown = " ".join(str(r.value) for r in (wrong_key, wrong_password, in_url)) + caplog.text
    for secret in ("V1JPTkctS0VZ", "hunter2", "s3cret", "R09PRC1LRVk="):
        assert secret not in shown


def test_an_unknown_certificate_authority_names_the_ca_setting(tmp_path: Path) -> None:
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    with ElasticsearchEmulator(ssl_context=context) as secured:
        with pytest.raises(ConfigError, match="FINDIMAGE_ES_CA_CERTS"):
            _store(secured.url).count()
        assert _store(secured.url, es_ca_certs=ca_file).count() == 0


def test_a_server_that_is_not_elasticsearch_is_named_as_such() -> None:
    class NotElasticsearch(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"count": 0}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotElasticsearch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ConfigError, match="is not Elasticsearch"):
            _store(url).count()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "FINDIMAGE_ES_URL"),
        ({"es_url": "http://127.0.0.1:9", "es_user": "finder"}, "FINDIMAGE_ES_PASSWORD"),
        ({"es_url": "http://127.0.0.1:9", "es_ca_certs": "/nowhere/ca.pem"}, "not a file"),
    ],
)
def test_incomplete_settings_are_config_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ElasticsearchStore.from_settings(load_settings(backend="elasticsearch", **settings))


def test_a_failed_rebuild_keeps_the_live_index_and_drops_the_new_one(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    live = emulator.aliases()[ALIAS]
    with pytest.raises(RuntimeError), store.rebuilding() as fresh:
        fresh.record_models(MODELS)
        fresh.upsert(LIBRARY[:2])
        raise RuntimeError("the indexer stopped")
    assert emulator.aliases()[ALIAS] == live
    assert emulator.index_names() == live
    assert store.count() == len(LIBRARY)


def test_a_rebuild_swaps_the_alias_and_deletes_the_old_index(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    with store.rebuilding() as fresh:
        fresh.record_models(MODELS)
        fresh.upsert(LIBRARY[:2])
        assert store.count() == len(LIBRARY)
    [new] = emulator.index_names()
    assert emulator.aliases() == {ALIAS: [new]}
    assert store.count() == 2
    swaps = _bodies(emulator, "_aliases")
    assert len(swaps) == 1
    assert [next(iter(action)) for action in swaps[0]["actions"]] == ["remove", "add"]
