"""What only the Elasticsearch store does: its mapping, the alias, bulk failures, connection
settings, and one plain sentence for every way the cluster can be unusable."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import trustme
from elasticsearch import BadRequestError, Elasticsearch

from findimage.documents import ModelInfo
from findimage.errors import (
    BackendUnavailableError,
    ConfigError,
    IndexChangedError,
    ModelMismatchError,
)
from findimage.settings import load_settings
from findimage.stores.elasticsearch.mapping import VectorIndexOptions, index_mappings, to_source
from findimage.stores.elasticsearch.rebuild import rebuilding
from findimage.stores.elasticsearch.store import ElasticsearchStore
from tests.support.es_emulator import ES_8, ElasticsearchEmulator
from tests.support.store_cases import LIBRARY, MODELS, unit_vector

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
    store.search(unit_vector([1.0]), 3, folder="a/b")
    store.search(unit_vector([1.0]), 5000)
    first, big = (body for body in _bodies(emulator, "_search") if "knn" in body)
    assert first["knn"]["k"] == 3
    assert first["knn"]["num_candidates"] == 21
    assert first["knn"]["filter"]["bool"]["minimum_should_match"] == 1
    assert "vector" not in first["_source"]["includes"]
    assert big["knn"]["num_candidates"] == 10_000


def test_the_models_are_checked_against_the_mapping_at_start(
    emulator: ElasticsearchEmulator,
) -> None:
    es = _store(emulator.url).connection.client
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
    patient.refresh()
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
    store.refresh()
    emulator.stop()
    # "Cannot reach" (connection refused), not "did not answer within": nothing waited for
    # the timeout.
    with pytest.raises(BackendUnavailableError, match="Cannot reach Elasticsearch"):
        store.search(unit_vector([1.0]), 3)
    emulator.start()
    assert len(store.search(unit_vector([1.0]), 3)) == 3


def test_a_cluster_that_does_not_answer_is_given_up_after_the_timeout(
    emulator: ElasticsearchEmulator,
) -> None:
    store = _store(emulator.url, es_timeout=0.3)
    emulator.stall()
    with pytest.raises(BackendUnavailableError, match=r"did not answer within 0\.3 seconds"):
        store.count()
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
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
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


# --- versions ---------------------------------------------------------------------------------


def test_the_version_is_read_once_and_every_request_then_speaks_the_clusters_major(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.refresh()
    store.search(unit_vector([1.0]), 3)
    first, *rest = emulator.requests
    assert (first.method, first.path) == ("GET", "/")
    assert first.headers["accept"] == "application/json"
    assert [r for r in rest if r.path == "/"] == []
    major = emulator.version.split(".")[0]
    for request in rest:
        assert request.headers["accept"].endswith(f"compatible-with={major}"), request.path
        if request.body:
            assert request.headers["content-type"].endswith(f"compatible-with={major}")


def test_the_plain_9x_client_is_refused_by_an_8x_cluster_as_a_real_one_refuses_it() -> None:
    with (
        ElasticsearchEmulator(version=ES_8) as old,
        Elasticsearch(old.url) as plain,
        pytest.raises(BadRequestError) as refused,
    ):
        plain.count(index="anything")
    assert refused.value.body["error"]["type"] == "media_type_header_exception"
    assert "Accept version must be either version 8 or 7, but found 9" in str(refused.value.body)


@pytest.mark.parametrize(
    ("version", "index_type", "needed"),
    [
        ("8.6.2", "hnsw", "8.7"),
        ("8.11.4", "int8_hnsw", "8.12"),
        ("8.15.0", "bbq_hnsw", "8.16"),
        ("7.17.25", "hnsw", "8.7"),
    ],
)
def test_an_older_cluster_is_refused_in_one_sentence_naming_both_versions(
    version: str, index_type: str, needed: str
) -> None:
    with ElasticsearchEmulator(version=version) as old:
        with pytest.raises(ConfigError) as refused:
            _store(old.url, es_index_type=index_type).count()
        assert str(refused.value) == (
            f"Elasticsearch at {old.url} is version {version}, but findimage needs {needed} "
            "or later: upgrade the cluster."
        )


def test_an_https_url_on_a_plain_http_cluster_says_to_use_http(
    emulator: ElasticsearchEmulator,
) -> None:
    url = emulator.url.replace("http://", "https://")
    with pytest.raises(ConfigError) as raised:
        _store(url).count()
    message = str(raised.value)
    assert message.startswith(f"Elasticsearch at {url} did not complete a TLS handshake (")
    assert message.endswith("if it serves plain HTTP, use http:// in FINDIMAGE_ES_URL.")
    assert "certificate" not in message


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9200", "127.0.0.1:9200"])
def test_a_url_that_is_not_http_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        _store(url)


# --- documents findimage did not write --------------------------------------------------------


def test_documents_without_findimage_fields_are_named_in_one_sentence(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    doc, vector = LIBRARY[0]
    partial = {k: v for k, v in to_source(doc, vector).items() if k != "size"}
    store.connection.client.index(index=ALIAS, id=doc.id, document=partial, refresh=True)
    expected = (
        f"The document {doc.id} in the Elasticsearch index {emulator.index_names()[0]} has no "
        "'size' field: something other than findimage wrote it; run `findimage index "
        "--rebuild` to rebuild the index."
    )
    with pytest.raises(BackendUnavailableError) as listing:
        store.fingerprints()
    with pytest.raises(BackendUnavailableError) as searching:
        store.search(vector, 1)
    assert str(listing.value) == str(searching.value) == expected


# --- refreshes and reads -------------------------------------------------------------------


def test_writes_are_not_refreshed_one_by_one(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    for item in LIBRARY:
        store.upsert([item])
    store.delete([LIBRARY[0][0].id])
    assert emulator.calls("POST", "_refresh") + emulator.calls("GET", "_refresh") == []
    assert store.count() == 0
    store.refresh()
    assert store.count() == len(LIBRARY) - 1


def test_get_many_is_one_mget_and_returns_vectors_on_every_version(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    emulator.requests.clear()
    found = store.get_many([doc.id for doc, _ in LIBRARY])
    assert [r.path for r in emulator.requests] == ["/_mget"]
    for doc, vector in LIBRARY:
        np.testing.assert_allclose(found[doc.id][1], vector, atol=1e-6)


# --- first runs and rebuilds ---------------------------------------------------------------


def test_two_first_runs_at_once_end_with_one_index_behind_the_alias(
    emulator: ElasticsearchEmulator,
) -> None:
    first, second = _store(emulator.url), _store(emulator.url)

    def let_the_other_run_create_first(method: str, path: str) -> bool:
        if method == "PUT" and path.startswith(f"/{ALIAS}-") and not emulator.index_names():
            emulator.before_request = None
            second.record_models(MODELS)
        return True

    emulator.before_request = let_the_other_run_create_first
    first.record_models(MODELS)
    [index] = emulator.index_names()
    assert emulator.aliases() == {ALIAS: [index]}
    assert first.upsert(LIBRARY[:2]) == second.upsert(LIBRARY[2:]) == []
    first.refresh()
    assert first.count() == second.count() == len(LIBRARY)


OTHER_MODELS = ModelInfo("other-image", "other-text", MODELS.dims)


def _rebuild_with(store: ElasticsearchStore, models: ModelInfo):
    return rebuilding(store, models.image_model, models.text_model)


def test_a_failed_rebuild_keeps_the_live_index_and_drops_the_new_one(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.refresh()
    live = emulator.aliases()[ALIAS]
    with pytest.raises(RuntimeError), _rebuild_with(store, OTHER_MODELS) as fresh:
        fresh.record_models(OTHER_MODELS)
        fresh.upsert(LIBRARY[:2])
        raise RuntimeError("the indexer stopped")
    assert emulator.aliases()[ALIAS] == live
    assert emulator.index_names() == live
    assert store.count() == len(LIBRARY)


def test_a_rebuild_builds_without_refreshes_or_replicas_then_swaps_and_deletes_the_old_index(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.refresh()
    [old] = emulator.index_names()
    with _rebuild_with(store, OTHER_MODELS) as fresh:
        fresh.record_models(OTHER_MODELS)
        fresh.upsert(LIBRARY[:2])
        building = emulator.settings(fresh.target)
        assert (building["refresh_interval"], building["number_of_replicas"]) == ("-1", "0")
        assert store.count() == len(LIBRARY)
    [new] = emulator.index_names()
    assert new != old
    assert emulator.aliases() == {ALIAS: [new]}
    live = emulator.settings(new)
    assert (live["refresh_interval"], live["number_of_replicas"]) == ("1s", "1")
    assert store.count() == 2
    assert store.models() == OTHER_MODELS
    [swap] = _bodies(emulator, "_aliases")
    assert swap["actions"] == [
        {"remove": {"index": old, "alias": ALIAS}},
        {"add": {"index": new, "alias": ALIAS}},
    ]


def test_a_rebuild_with_the_same_models_copies_the_vectors_instead_of_embedding(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.refresh()
    with _rebuild_with(store, MODELS) as fresh:
        assert fresh.fingerprints() == store.fingerprints()
    assert store.count() == len(LIBRARY)
    for doc, vector in LIBRARY:
        found = store.get(doc.id)
        assert found is not None and found[0] == doc
        np.testing.assert_allclose(found[1], vector, atol=1e-6)
    # One bulk: the original upsert. The copy is Elasticsearch's own `_reindex`.
    assert len(emulator.calls("PUT", "/_bulk") + emulator.calls("POST", "/_bulk")) == 1
    assert len(emulator.calls("POST", "/_reindex")) == 1


def test_a_concrete_index_named_like_the_alias_is_replaced_by_a_rebuild(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    client = store.connection.client
    client.indices.create(index=ALIAS, mappings=index_mappings(MODELS, VectorIndexOptions()))
    for doc, vector in LIBRARY:
        client.index(index=ALIAS, id=doc.id, document=to_source(doc, vector))
    client.indices.refresh(index=ALIAS)
    assert store.models() == MODELS
    with pytest.raises(ConfigError, match=r"not an alias.*findimage index --rebuild"):
        store.upsert(LIBRARY[:1])
    with _rebuild_with(store, MODELS):
        pass
    [new] = emulator.index_names()
    assert new.startswith(f"{ALIAS}-")
    assert emulator.aliases() == {ALIAS: [new]}
    assert store.count() == len(LIBRARY)
    [swap] = _bodies(emulator, "_aliases")
    assert {"remove_index": {"index": ALIAS}} in swap["actions"]


def test_a_failed_swap_deletes_the_new_index_and_the_next_rebuild_succeeds(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.refresh()
    live = emulator.index_names()

    def drop_the_swap(method: str, path: str) -> bool:
        return path != "/_aliases"

    emulator.before_request = drop_the_swap
    with pytest.raises(BackendUnavailableError), _rebuild_with(store, OTHER_MODELS) as fresh:
        fresh.record_models(OTHER_MODELS)
        fresh.upsert(LIBRARY)
    assert emulator.index_names() == live
    emulator.before_request = None
    with _rebuild_with(store, OTHER_MODELS) as fresh:
        fresh.record_models(OTHER_MODELS)
    assert len(emulator.index_names()) == 1


def test_leftovers_of_unfinished_rebuilds_are_listed_and_removed_by_the_next_rebuild(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.refresh()
    leftover = f"{ALIAS}-20240101000000-abcdef"
    unrelated = f"{ALIAS}-archive"
    for name in (leftover, unrelated):
        store.connection.client.indices.create(
            index=name, mappings=index_mappings(MODELS, VectorIndexOptions())
        )
    assert f"left over from unfinished rebuilds: {leftover} " in store.status().location
    with _rebuild_with(store, MODELS):
        pass
    assert leftover not in emulator.index_names()
    assert unrelated in emulator.index_names()
    assert "left over" not in store.status().location


def test_a_search_after_the_alias_moved_to_other_models_is_refused_with_the_fresh_sentence(
    emulator: ElasticsearchEmulator, store: ElasticsearchStore
) -> None:
    store.record_models(MODELS)
    store.upsert(LIBRARY)
    store.refresh()
    assert store.search(unit_vector([1.0]), 2)
    rebuilder = _store(emulator.url)
    with _rebuild_with(rebuilder, OTHER_MODELS) as fresh:
        fresh.record_models(OTHER_MODELS)
        fresh.upsert(LIBRARY)
    with pytest.raises(IndexChangedError):
        store.search(unit_vector([1.0]), 2)
    assert store.models() == OTHER_MODELS
