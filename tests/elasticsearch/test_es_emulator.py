"""The emulator answers as Elasticsearch's REST YAML tests say it must, through the real client."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
from elasticsearch import (
    AuthenticationException,
    BadRequestError,
    Elasticsearch,
    NotFoundError,
    helpers,
)

from findimage.encoders import ClipEncoder
from findimage.stores.elasticsearch.versions import VersionedElasticsearch
from tests.support.es_emulator import ES_9_1, ElasticsearchEmulator

QUERY = [-0.5, 90.0, -10, 14.8, -156.0]
ANIMALS = {
    "1": ("cow.jpg", [230.0, 300.33, -34.8988, 15.555, -200.0]),
    "2": ("moose.jpg", [-0.5, 100.0, -13, 14.8, -156.0]),
    "3": ("rabbit.jpg", [0.5, 111.3, -13.0, 14.8, -156.0]),
}


def _animals(es: Elasticsearch, index: str, similarity: str) -> None:
    """The setup of 40_knn_search_cosine.yml and 150_knn_search_missing_params.yml."""
    es.indices.create(
        index=index,
        mappings={
            "properties": {
                "name": {"type": "keyword"},
                "vector": {
                    "type": "dense_vector",
                    "dims": 5,
                    "index": True,
                    "similarity": similarity,
                },
            }
        },
    )
    for doc_id, (name, vector) in ANIMALS.items():
        es.index(index=index, id=doc_id, document={"name": name, "vector": vector})
    es.indices.refresh()


def test_cosine_scores_are_one_plus_cosine_over_two(es: Elasticsearch) -> None:
    _animals(es, "test", "cosine")
    response = es.search(
        index="test",
        fields=["name"],
        knn={"field": "vector", "query_vector": QUERY, "k": 2, "num_candidates": 3},
    )
    hits = response["hits"]["hits"]
    assert [hit["_id"] for hit in hits] == ["2", "3"]
    assert hits[0]["fields"]["name"][0] == "moose.jpg"
    assert hits[1]["fields"]["name"][0] == "rabbit.jpg"
    assert hits[0]["_score"] == pytest.approx(0.999405, abs=1e-4)
    assert hits[1]["_score"] == pytest.approx(0.9976501, abs=1e-4)


@pytest.mark.parametrize(
    ("knn", "size", "total"),
    [
        ({"num_candidates": 10}, None, 3),
        ({"num_candidates": 10}, 2, 2),
        ({"k": 2}, None, 2),
        ({}, None, 3),
        ({}, 2, 2),
    ],
    ids=["no-k", "no-k-size", "no-num-candidates", "neither", "neither-size"],
)
def test_k_defaults_to_size_and_num_candidates_is_optional(
    es: Elasticsearch, knn: dict, size: int | None, total: int
) -> None:
    _animals(es, "knn_search_test_index", "l2_norm")
    response = es.search(
        index="knn_search_test_index",
        rest_total_hits_as_int=True,
        knn={"field": "vector", "query_vector": QUERY, **knn},
        size=size,
    )
    assert response["hits"]["total"] == total


@pytest.mark.parametrize("size", [10, None], ids=["size-10", "default-size"])
def test_num_candidates_below_k_is_a_bad_request(es: Elasticsearch, size: int | None) -> None:
    _animals(es, "knn_search_test_index", "l2_norm")
    with pytest.raises(BadRequestError):
        es.search(
            index="knn_search_test_index",
            knn={"field": "vector", "query_vector": QUERY, "num_candidates": 2},
            size=size,
        )


def test_a_query_vector_of_the_wrong_length_is_a_bad_request(es: Elasticsearch) -> None:
    _animals(es, "test", "cosine")
    with pytest.raises(BadRequestError) as raised:
        es.search(index="test", knn={"field": "vector", "query_vector": [1.0, 2.0], "k": 1})
    assert "different number of dimensions [2]" in str(raised.value.body)


def test_an_unknown_index_is_index_not_found(es: Elasticsearch) -> None:
    with pytest.raises(NotFoundError) as raised:
        es.search(index="nowhere", knn={"field": "vector", "query_vector": QUERY, "k": 1})
    assert raised.value.body["error"]["type"] == "index_not_found_exception"
    assert raised.value.body["status"] == 404


def test_knn_filter_as_in_the_yaml_tests(es: Elasticsearch) -> None:
    _animals(es, "test", "l2_norm")
    knn = {"field": "vector", "query_vector": QUERY, "k": 2, "num_candidates": 3}
    one = es.search(
        index="test", fields=["name"], knn={**knn, "filter": {"term": {"name": "rabbit.jpg"}}}
    )
    assert one["hits"]["total"]["value"] == 1
    assert one["hits"]["hits"][0]["fields"]["name"][0] == "rabbit.jpg"
    none = es.search(
        index="test",
        knn={**knn, "filter": [{"term": {"name": "rabbit.jpg"}}, {"term": {"_id": 2}}]},
    )
    assert none["hits"]["total"]["value"] == 0


def test_vectors_are_in_source_before_9_2_and_left_out_from_9_2_unless_asked_for(
    es: Elasticsearch, emulator: ElasticsearchEmulator
) -> None:
    _animals(es, "test", "cosine")
    knn = {"field": "vector", "query_vector": QUERY, "k": 1}
    assert "_source" not in es.search(index="test", knn=knn, source=False)["hits"]["hits"][0]
    plain = es.search(index="test", knn=knn)["hits"]["hits"][0]["_source"]
    if emulator.version >= "9.2":
        assert plain == {"name": "moose.jpg"}
        asked = es.get(index="test", id="2", source_exclude_vectors=False)["_source"]
        assert asked["vector"] == ANIMALS["2"][1]
    else:
        assert plain == {"name": "moose.jpg", "vector": ANIMALS["2"][1]}
        with pytest.raises(BadRequestError):
            es.get(index="test", id="2", source_exclude_vectors=False)


def test_9_1_still_returns_vectors_in_source() -> None:
    with ElasticsearchEmulator(version=ES_9_1) as nine_one:
        client = VersionedElasticsearch(nine_one.url)
        client.ensure_version(nine_one.url, (8, 0))
        _animals(client, "test", "cosine")
        assert client.get(index="test", id="2")["_source"]["vector"] == ANIMALS["2"][1]


def test_searches_see_documents_after_a_refresh_gets_see_them_at_once(es: Elasticsearch) -> None:
    _animals(es, "test", "cosine")
    es.index(index="test", id="4", document={"name": "deer.jpg", "vector": [1.0] * 5})
    assert es.get(index="test", id="4")["found"]
    assert es.count(index="test")["count"] == 3
    es.indices.refresh(index="test")
    assert es.count(index="test")["count"] == 4


def test_bulk_reports_each_item_and_the_errors_flag(
    es: Elasticsearch, emulator: ElasticsearchEmulator
) -> None:
    _animals(es, "test", "cosine")
    emulator.reject_bulk_items(1)
    response = es.bulk(
        operations=[
            {"index": {"_index": "test", "_id": "5"}},
            {"name": "a.jpg", "vector": [1.0] * 5},
            {"index": {"_index": "test", "_id": "6"}},
            {"name": "b.jpg", "vector": [1.0, 2.0]},
            {"delete": {"_index": "test", "_id": "1"}},
            {"delete": {"_index": "test", "_id": "missing"}},
        ]
    )
    assert response["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in response["items"]]
    assert statuses == [429, 400, 200, 404]
    errors = [next(iter(item.values())).get("error", {}).get("type") for item in response["items"]]
    assert errors == [
        "es_rejected_execution_exception",
        "document_parsing_exception",
        None,
        None,
    ]


def test_streaming_bulk_retries_rejected_items(
    es: Elasticsearch, emulator: ElasticsearchEmulator
) -> None:
    _animals(es, "test", "cosine")
    emulator.reject_bulk_items(2)
    actions = [
        {"_index": "test", "_id": str(i), "_source": {"name": f"{i}.jpg", "vector": [1.0] * 5}}
        for i in range(10, 13)
    ]
    results = list(
        helpers.streaming_bulk(
            es, actions, max_retries=2, initial_backoff=0.01, raise_on_error=False
        )
    )
    assert all(ok for ok, _ in results)
    assert len(results) == 3


def test_update_aliases_is_all_or_nothing(
    es: Elasticsearch, emulator: ElasticsearchEmulator
) -> None:
    es.indices.create(index="old", aliases={"live": {}})
    es.indices.create(index="new")
    with pytest.raises(NotFoundError):
        es.indices.update_aliases(
            actions=[
                {"add": {"index": "new", "alias": "live"}},
                {"remove": {"index": "old", "alias": "nothing", "must_exist": True}},
            ]
        )
    assert emulator.aliases() == {"live": ["old"]}
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": "old", "alias": "live"}},
            {"add": {"index": "new", "alias": "live"}},
        ]
    )
    assert emulator.aliases() == {"live": ["new"]}
    assert list(es.indices.get_mapping(index="live").body) == ["new"]


def test_infer_and_query_vector_builder_use_the_deployed_model(
    es: Elasticsearch, emulator: ElasticsearchEmulator, tiny_encoder: ClipEncoder
) -> None:
    emulator.deploy_model("clip-text", tiny_encoder.encode_texts)
    response = es.ml.infer_trained_model(model_id="clip-text", docs=[{"text_field": "red"}])
    inferred = response["inference_results"][0]["predicted_value"]
    np.testing.assert_allclose(inferred, tiny_encoder.encode_texts(["red"])[0], atol=1e-6)

    dims = len(inferred)
    es.indices.create(
        index="pictures",
        mappings={
            "properties": {"v": {"type": "dense_vector", "dims": dims, "similarity": "cosine"}}
        },
    )
    es.index(index="pictures", id="same", document={"v": inferred}, refresh=True)
    builder = {"text_embedding": {"model_id": "clip-text", "model_text": "red"}}
    hit = es.search(index="pictures", knn={"field": "v", "query_vector_builder": builder, "k": 1})
    assert hit["hits"]["hits"][0]["_score"] == pytest.approx(1.0, abs=1e-6)


def test_trained_model_stats_tell_missing_from_not_started(
    es: Elasticsearch, emulator: ElasticsearchEmulator
) -> None:
    with pytest.raises(NotFoundError):
        es.ml.get_trained_models_stats(model_id="absent")
    emulator.deploy_model("imported", None, state=None)
    stats = es.ml.get_trained_models_stats(model_id="imported")["trained_model_stats"][0]
    assert "deployment_stats" not in stats


def test_answers_carry_the_product_header_and_the_compatible_media_type(
    emulator: ElasticsearchEmulator,
) -> None:
    major = emulator.version.split(".")[0]
    request = urllib.request.Request(
        emulator.url + "/",
        headers={"Accept": f"application/vnd.elasticsearch+json; compatible-with={major}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["X-Elastic-Product"] == "Elasticsearch"
        assert response.headers["Content-Type"].startswith(
            f"application/vnd.elasticsearch+json;compatible-with={major}"
        )


def test_credentials_are_checked_when_configured() -> None:
    with ElasticsearchEmulator(api_key="c2VjcmV0") as secured:
        with pytest.raises(AuthenticationException):
            Elasticsearch(secured.url).info()
        with pytest.raises(AuthenticationException):
            Elasticsearch(secured.url, api_key="d3Jvbmc=").info()
        assert Elasticsearch(secured.url, api_key="c2VjcmV0").info()["version"]["number"]


def test_an_outage_keeps_the_data_and_the_address(es: Elasticsearch, emulator) -> None:
    _animals(es, "test", "cosine")
    url = emulator.url
    emulator.stop()
    emulator.start()
    assert emulator.url == url
    assert es.count(index="test")["count"] == 3


# --- the behaviors issue 14 found missing, each as the real service has it ---------------------


def test_dynamic_strict_refuses_a_field_outside_the_mapping(es: Elasticsearch) -> None:
    es.indices.create(
        index="strict", mappings={"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}
    )
    with pytest.raises(BadRequestError) as refused:
        es.index(index="strict", id="1", document={"a": "x", "b": "y"})
    assert refused.value.body["error"]["type"] == "strict_dynamic_mapping_exception"
    assert "dynamic introduction of [b] within [_doc] is not allowed" in str(refused.value.body)
    response = es.bulk(operations=[{"index": {"_index": "strict", "_id": "2"}}, {"b": 1}])
    assert response["items"][0]["index"]["error"]["type"] == "strict_dynamic_mapping_exception"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Upper", "must be lowercase"),
        ("_x", "must not start with '_', '-', or '+'"),
        ("-x", "must not start with '_', '-', or '+'"),
        ("+x", "must not start with '_', '-', or '+'"),
        ("a*b", "must not contain the following characters"),
        ("a#b", "must not contain '#'"),
        ("a:b", "must not contain ':'"),
        ("..", "must not be '.' or '..'"),
        ("x" * 256, "index name is too long, (256 > 255)"),
    ],
)
def test_index_names_follow_elasticsearchs_rules(
    es: Elasticsearch, name: str, problem: str
) -> None:
    with pytest.raises(BadRequestError) as refused:
        es.indices.create(index=name)
    assert refused.value.body["error"]["type"] == "invalid_index_name_exception"
    assert problem in refused.value.body["error"]["reason"]


def test_alias_names_follow_the_same_rules_and_may_not_shadow_an_index(es: Elasticsearch) -> None:
    es.indices.create(index="one")
    es.indices.create(index="two")
    for alias in ("_bad", "two"):
        with pytest.raises(BadRequestError) as refused:
            es.indices.update_aliases(actions=[{"add": {"index": "one", "alias": alias}}])
        assert refused.value.body["error"]["type"] == "invalid_alias_name_exception"


def test_an_index_named_like_an_alias_is_an_invalid_index_name(es: Elasticsearch) -> None:
    es.indices.create(index="real", aliases={"taken": {}})
    with pytest.raises(BadRequestError) as refused:
        es.indices.create(index="taken")
    assert refused.value.body["error"]["type"] == "invalid_index_name_exception"
    assert refused.value.body["error"]["reason"] == (
        "Invalid index name [taken], already exists as alias"
    )


def test_remove_index_lets_an_alias_take_the_index_name_in_one_call(es: Elasticsearch) -> None:
    es.indices.create(index="test")
    es.indices.create(index="test_2")
    es.indices.update_aliases(
        actions=[
            {"add": {"index": "test_2", "aliases": ["test", "test_write"]}},
            {"remove_index": {"index": "test"}},
        ]
    )
    assert list(es.indices.get(index="test").body) == ["test_2"]


def test_aliases_report_partial_failures_and_a_404_when_all_fail(es: Elasticsearch) -> None:
    es.indices.create(index="test_index")
    partial = es.indices.update_aliases(
        actions=[
            {"add": {"index": "test_index", "aliases": "test_alias1"}},
            {"remove": {"index": "test_index", "aliases": "test_non_existing"}},
        ]
    )
    assert partial["errors"] is True
    first, second = partial["action_results"]
    assert (first["status"], second["status"]) == (200, 404)
    assert second["error"]["type"] == "aliases_not_found_exception"
    assert es.indices.exists_alias(name="test_alias1")
    with pytest.raises(NotFoundError) as all_failed:
        es.indices.update_aliases(
            actions=[{"remove": {"index": "test_index", "aliases": "test_non_existing"}}]
        )
    assert all_failed.value.body["error"]["type"] == "aliases_not_found_exception"


def _plain_docs(es: Elasticsearch, index: str, count: int) -> None:
    operations: list[dict] = []
    for number in range(count):
        operations += [{"index": {"_index": index, "_id": str(number)}}, {"n": number}]
    es.bulk(operations=operations, refresh=True)


def test_hits_total_stops_at_10000_with_gte_unless_tracked(es: Elasticsearch) -> None:
    _plain_docs(es, "many", 10_001)
    capped = es.search(index="many", size=0)["hits"]["total"]
    assert capped == {"value": 10_000, "relation": "gte"}
    exact = es.search(index="many", size=0, track_total_hits=True)["hits"]["total"]
    assert exact == {"value": 10_001, "relation": "eq"}


def test_every_scroll_page_reports_the_searchs_total(es: Elasticsearch) -> None:
    _plain_docs(es, "paged", 25)
    first = es.search(index="paged", size=10, scroll="1m")
    second = es.scroll(scroll_id=first["_scroll_id"], scroll="1m")
    assert len(second["hits"]["hits"]) == 10
    assert second["hits"]["total"] == {"value": 25, "relation": "eq"}


def test_knn_with_a_query_returns_both_with_summed_scores(es: Elasticsearch) -> None:
    _animals(es, "test", "l2_norm")
    knn = {"field": "vector", "query_vector": QUERY, "k": 1, "num_candidates": 3}
    only_knn = es.search(index="test", knn=knn)["hits"]["hits"]
    both = es.search(index="test", knn=knn, query={"term": {"name": "moose.jpg"}})["hits"]
    assert [h["_id"] for h in only_knn] == ["2"]
    assert [h["_id"] for h in both["hits"]] == ["2"]
    assert both["hits"][0]["_score"] == pytest.approx(only_knn[0]["_score"] + 1.0)
    union = es.search(index="test", knn=knn, query={"term": {"name": "cow.jpg"}})["hits"]
    assert {h["_id"] for h in union["hits"]} == {"1", "2"}


def test_a_malformed_bulk_line_is_a_400_and_writes_nothing(
    es: Elasticsearch, emulator: ElasticsearchEmulator
) -> None:
    es.indices.create(index="plain")
    body = '{"index": {"_index": "plain", "_id": "1"}}\n{"n": 1}\nnot json\n'
    with pytest.raises(BadRequestError) as refused:
        es.bulk(operations=body)
    assert "Malformed action/metadata line [3]" in refused.value.body["error"]["reason"]
    es.indices.refresh(index="plain")
    assert es.count(index="plain")["count"] == 0


def test_infer_refuses_a_document_without_the_input_field(
    es: Elasticsearch, emulator: ElasticsearchEmulator, tiny_encoder: ClipEncoder
) -> None:
    emulator.deploy_model("clip-text", tiny_encoder.encode_texts)
    with pytest.raises(BadRequestError):
        es.ml.infer_trained_model(model_id="clip-text", docs=[{"text": "red"}])


def test_dates_sort_as_instants_not_as_strings(es: Elasticsearch) -> None:
    es.indices.create(index="dated", mappings={"properties": {"at": {"type": "date"}}})
    # As strings "2024-05-01T09..." sorts after "2024-05-01T10:30+02:00"; as instants, before.
    es.index(index="dated", id="early-utc", document={"at": "2024-05-01T08:00:00+00:00"})
    es.index(index="dated", id="later", document={"at": "2024-05-01T09:00:00+00:00"})
    es.index(index="dated", id="earliest", document={"at": "2024-05-01T10:30:00+04:00"})
    es.indices.refresh(index="dated")
    hits = es.search(index="dated", sort=[{"at": {"order": "desc"}}])["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["later", "early-utc", "earliest"]
    assert hits[0]["sort"] == [1714554000000]


def test_settings_are_read_and_put_back_to_their_defaults(es: Elasticsearch) -> None:
    es.indices.create(index="built", settings={"index": {"refresh_interval": "-1"}})
    es.indices.put_settings(index="built", settings={"index": {"number_of_replicas": 0}})
    current = es.indices.get_settings(index="built")["built"]["settings"]["index"]
    assert (current["refresh_interval"], current["number_of_replicas"]) == ("-1", "0")
    es.indices.put_settings(
        index="built", settings={"index": {"refresh_interval": None, "number_of_replicas": None}}
    )
    current = es.indices.get_settings(index="built")["built"]["settings"]["index"]
    assert (current["refresh_interval"], current["number_of_replicas"]) == ("1s", "1")


def test_reindex_copies_the_matching_documents_vectors_included(es: Elasticsearch) -> None:
    _animals(es, "test", "cosine")
    es.reindex(
        source={"index": "test", "query": {"term": {"name": "moose.jpg"}}},
        dest={"index": "copy"},
        refresh=True,
    )
    assert es.count(index="copy")["count"] == 1
    [doc] = es.mget(index="copy", ids=["2"])["docs"]
    assert doc["found"]


def test_create_refuses_an_existing_document_and_seq_no_guards_writes(es: Elasticsearch) -> None:
    """op_type=create and _create answer 409 for a document that exists; a write or delete
    with if_seq_no/if_primary_term that are not the document's last ones answers 409
    (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/
    optimistic-concurrency-control)."""
    from elasticsearch import ConflictError

    es.indices.create(index="leases")
    made = es.create(index="leases", id="a", document={"n": 1})
    assert made["result"] == "created"
    with pytest.raises(ConflictError):
        es.create(index="leases", id="a", document={"n": 2})
    with pytest.raises(ConflictError):
        es.index(index="leases", id="a", document={"n": 2}, op_type="create")
    got = es.get(index="leases", id="a")
    assert (got["_seq_no"], got["_primary_term"]) == (made["_seq_no"], made["_primary_term"])
    changed = es.index(
        index="leases", id="a", document={"n": 3}, if_seq_no=got["_seq_no"], if_primary_term=1
    )
    assert changed["_seq_no"] > got["_seq_no"]
    with pytest.raises(ConflictError):  # the old sequence number again
        es.index(
            index="leases", id="a", document={"n": 4}, if_seq_no=got["_seq_no"], if_primary_term=1
        )
    with pytest.raises(ConflictError):
        es.delete(index="leases", id="a", if_seq_no=got["_seq_no"], if_primary_term=1)
    es.delete(index="leases", id="a", if_seq_no=changed["_seq_no"], if_primary_term=1)
    with pytest.raises(ConflictError):  # no document at all
        es.index(index="leases", id="a", document={"n": 5}, if_seq_no=0, if_primary_term=1)
