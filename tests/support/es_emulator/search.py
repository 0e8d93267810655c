"""Search: `_count`, `_search` with `query`, `knn` or both, sorting, scrolls."""

from __future__ import annotations

import base64
import copy
import fnmatch
import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tests.support.es_emulator.common import (
    EmulatorState,
    EsError,
    Index,
    Json,
    as_list,
    bad_request,
    field_value,
    shards,
)
from tests.support.es_emulator.documents import filter_source

MAX_NUM_CANDIDATES = 10_000
# track_total_hits defaults to 10,000: past it the total is a lower bound ("gte").
# https://www.elastic.co/guide/en/elasticsearch/reference/current/search-your-data.html#track-total-hits
DEFAULT_TRACK_TOTAL_HITS = 10_000

Scored = tuple[Index, str, float]


class SearchMixin(EmulatorState):
    _scrolls: dict[str, tuple[int, list[Json], Json]]
    _scroll_ids: itertools.count

    def _count(self, name: str, body: Json) -> Json:
        query = body.get("query", {"match_all": {}})
        total = sum(
            1
            for index_name in self._resolve_read(name)
            for doc_id, source in self._indices[index_name].searchable.items()
            if matches(query, doc_id, source)
        )
        return {"count": total, "_shards": shards(1)}

    def _search(self, name: str, body: Json, params: dict[str, str]) -> Json:
        """Searches see refreshed documents only (https://www.elastic.co/docs/manage-data/
        data-store/near-real-time). The emulator never refreshes on its own: real clusters do
        every `refresh_interval` (1s by default), so what passes here sees at least as much
        there. Queries score 1.0 per match (real: BM25); findimage sends filters and sorts."""
        indices = [self._indices[n] for n in self._resolve_read(name)]
        size = int(body.get("size", params.get("size", 10)))
        start = int(body.get("from", params.get("from", 0)))
        knn = body.get("knn")
        query = body.get("query")
        if knn is not None and "scroll" in params:
            raise bad_request("[knn] cannot be used in a scroll context")
        scored: list[Scored] = []
        if knn is not None:
            scored = self._knn(indices, as_list(knn), size)
        if query is not None or knn is None:
            scored = _combined(
                scored,
                [
                    (index, doc_id, 1.0)
                    for index in indices
                    for doc_id, source in sorted(index.searchable.items())
                    if matches(query or {"match_all": {}}, doc_id, source)
                ],
            )
        sort = body.get("sort")
        if sort:
            scored = _sorted(scored, sort)
        elif knn is not None or query is not None:
            scored.sort(key=lambda item: -item[2])
        total = len(scored)
        source_spec = body.get("_source", self._source_spec(params))
        self._check_source_spec(source_spec)
        wanted_fields = [f if isinstance(f, str) else f["field"] for f in body.get("fields", [])]
        hits = [
            _hit(index, doc_id, score, source_spec, wanted_fields, sort)
            for index, doc_id, score in scored
        ]
        hits_total = _total(total, body.get("track_total_hits", params.get("track_total_hits")))
        answer: Json = {
            "took": 1,
            "timed_out": False,
            "_shards": shards(len(indices)),
            "hits": {
                "max_score": max((h["_score"] for h in hits), default=None),
                "hits": hits[start : start + size],
            },
        }
        if hits_total is not None:
            answer["hits"]["total"] = (
                hits_total["value"]
                if params.get("rest_total_hits_as_int") == "true"
                else hits_total
            )
        if "scroll" in params:
            scroll_id = base64.b64encode(f"scroll-{next(self._scroll_ids)}".encode()).decode()
            # Every page of a scroll reports the total of the whole search, not its own
            # length (scroll/10_basic.yml matches hits.total on later pages).
            self._scrolls[scroll_id] = (size, hits[start + size :], copy.deepcopy(answer["hits"]))
            answer["_scroll_id"] = scroll_id
        return answer

    def _scroll(self, body: Json) -> Json:
        scroll_id = body.get("scroll_id", "")
        state = self._scrolls.get(scroll_id)
        if state is None:
            # scroll/10_basic.yml "Scroll cannot used with unknown id" (404).
            raise EsError(
                404,
                "search_context_missing_exception",
                f"No search context found for id [{scroll_id}]",
            )
        size, remaining, first = state
        page = remaining[:size]
        self._scrolls[scroll_id] = (size, remaining[size:], first)
        hits = {k: v for k, v in first.items() if k != "hits"}
        return {
            "_scroll_id": scroll_id,
            "took": 1,
            "timed_out": False,
            "_shards": shards(1),
            "hits": {**hits, "hits": page},
        }

    def _clear_scroll(self, body: Json) -> Json:
        freed = 0
        for scroll_id in as_list(body.get("scroll_id")):
            if self._scrolls.pop(scroll_id, None) is not None:
                freed += 1
        return {"succeeded": True, "num_freed": freed}

    def _knn(self, indices: list[Index], searches: list[Json], size: int) -> list[Scored]:
        """Several knn clauses: a hit's score is the sum of its scores in each (knn-search
        docs, "Search multiple kNN fields")."""
        result: list[Scored] = []
        for search in searches:
            result = _combined(result, self._one_knn(indices, search, size))
        return result

    def _one_knn(self, indices: list[Index], search: Json, size: int) -> list[Scored]:
        """Exact kNN, whatever the index_options: quantized types (int8_hnsw, bbq_hnsw) give
        approximate scores on a real cluster, so tests compare rankings with a margin or use
        hnsw. Defaults and checks from 40_knn_search.yml and 150_knn_search_missing_params.yml:
        k defaults to size, num_candidates to min(1.5 k, 10000), num_candidates >= k."""
        field_name = search.get("field")
        if not field_name:
            raise bad_request("[knn] requires field [field]", "x_content_parse_exception")
        k = int(search.get("k", size))
        if k < 1:
            raise bad_request("[k] must be greater than 0")
        num_candidates = int(search.get("num_candidates", min(round(1.5 * k), MAX_NUM_CANDIDATES)))
        if num_candidates > MAX_NUM_CANDIDATES:
            raise bad_request(f"[num_candidates] cannot exceed [{MAX_NUM_CANDIDATES}]")
        if num_candidates < k:
            raise bad_request("[num_candidates] cannot be less than [k]")
        query = self._query_vector(search)
        results: list[Scored] = []
        for index in indices:
            spec = index.properties().get(field_name)
            if spec is None:
                raise EsError(
                    400,
                    "query_shard_exception",
                    f"failed to create query: field [{field_name}] does not exist in the mapping",
                    index=index.name,
                )
            if spec.get("type") != "dense_vector":
                raise bad_request(
                    f"[knn] queries are only supported on [dense_vector] fields, field "
                    f"[{field_name}] is of type [{spec.get('type')}]"
                )
            dims = spec.get("dims")
            if len(query) != dims:
                raise bad_request(
                    f"The query vector has a different number of dimensions [{len(query)}] "
                    f"than the document vectors [{dims}]."
                )
            similarity = spec.get("similarity", "cosine")
            if similarity == "cosine" and not np.any(query):
                raise bad_request(
                    "The [cosine] similarity does not support vectors with zero magnitude."
                )
            filters = search.get("filter", [])
            for doc_id, source in index.searchable.items():
                vector = source.get(field_name)
                if vector is None or not all(matches(f, doc_id, source) for f in as_list(filters)):
                    continue
                results.append((index, doc_id, _similarity(similarity, query, vector)))
        results.sort(key=lambda item: -item[2])
        return results[:k]

    def _query_vector(self, search: Json) -> np.ndarray:
        has_vector = "query_vector" in search
        builder = search.get("query_vector_builder")
        if has_vector == (builder is not None):
            raise bad_request(
                "either [query_vector] or [query_vector_builder] must be provided, but not both"
                if has_vector
                else "either [query_vector] or [query_vector_builder] must be provided"
            )
        if has_vector:
            return np.asarray(search["query_vector"], dtype=np.float64)
        spec = builder.get("text_embedding")
        if spec is None:
            raise bad_request(f"unknown query vector builder [{next(iter(builder), '')}]")
        vectors = self._infer_with(spec.get("model_id", ""), [spec.get("model_text", "")])
        return np.asarray(vectors[0], dtype=np.float64)


def _total(total: int, track: Any) -> Json | None:
    """track_total_hits: true counts exactly, false leaves the total out, a number caps it."""
    if track in (True, "true"):
        return {"value": total, "relation": "eq"}
    if track in (False, "false"):
        return None
    limit = DEFAULT_TRACK_TOTAL_HITS if track is None else int(track)
    if total > limit:
        return {"value": limit, "relation": "gte"}
    return {"value": total, "relation": "eq"}


def _combined(first: list[Scored], second: list[Scored]) -> list[Scored]:
    """`knn` with `query`: the union of both, a hit's score the sum of its scores (knn-search
    docs, "Combine approximate kNN with other features": "the score of each hit is the sum of
    the knn and query scores")."""
    scores: dict[tuple[str, str], Scored] = {}
    for index, doc_id, score in [*first, *second]:
        key = (index.name, doc_id)
        previous = scores.get(key, (index, doc_id, 0.0))[2]
        scores[key] = (index, doc_id, previous + score)
    return list(scores.values())


def _similarity(similarity: str, query: np.ndarray, vector: Sequence[float]) -> float:
    """The _score of each similarity (dense-vector docs, "similarity" parameter)."""
    doc = np.asarray(vector, dtype=np.float64)
    if similarity == "cosine":
        cosine = float(query @ doc / (np.linalg.norm(query) * np.linalg.norm(doc)))
        return (1.0 + cosine) / 2.0
    if similarity == "dot_product":
        return (1.0 + float(query @ doc)) / 2.0
    if similarity == "l2_norm":
        return 1.0 / (1.0 + float(np.sum((query - doc) ** 2)))
    dot = float(query @ doc)
    return 1.0 / (1.0 - dot) if dot < 0 else dot + 1.0


def _field_and_value(spec: Json) -> tuple[str, Any]:
    (field_name, value), *_ = spec.items()
    if isinstance(value, dict):
        value = value.get("value")
    return field_name, value


def matches(query: Json | list, doc_id: str, source: Json) -> bool:
    """The query clauses findimage and its tests use: match_all, ids, exists, term, terms,
    prefix, range, geo_distance, bool
    (https://www.elastic.co/docs/reference/query-languages/query-dsl)."""
    if isinstance(query, list):
        return all(matches(q, doc_id, source) for q in query)
    if not query:
        return True
    (kind, spec), *_ = query.items()
    if kind == "match_all":
        return True
    if kind == "ids":
        return doc_id in spec.get("values", [])
    if kind == "exists":
        return field_value(source, spec["field"]) is not None
    if kind in {"term", "terms", "prefix"}:
        field_name, wanted = _field_and_value(spec)
        actual = doc_id if field_name == "_id" else field_value(source, field_name)
        values = [str(v) for v in as_list(actual)]
        if kind == "term":
            return str(wanted) in values
        if kind == "terms":
            return any(str(w) in values for w in wanted)
        return any(v.startswith(str(wanted)) for v in values)
    if kind == "range":
        return _in_range(spec, source)
    if kind == "geo_distance":
        return _within_distance(spec, source)
    if kind == "bool":
        musts = as_list(spec.get("must")) + as_list(spec.get("filter"))
        shoulds = as_list(spec.get("should"))
        default_min = 0 if musts else 1
        minimum = int(spec.get("minimum_should_match", default_min if shoulds else 0))
        return (
            all(matches(q, doc_id, source) for q in musts)
            and not any(matches(q, doc_id, source) for q in as_list(spec.get("must_not")))
            and sum(matches(q, doc_id, source) for q in shoulds) >= minimum
        )
    raise bad_request(f"unknown query [{kind}]", "parsing_exception")


_RANGE_OPERATORS = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
# What a range may hold besides its bounds (query-dsl-range-query): accepted, not used here.
_RANGE_OPTIONS = {"format", "relation", "time_zone", "boost"}


def _in_range(spec: Json, source: Json) -> bool:
    """`range` (https://www.elastic.co/docs/reference/query-languages/query-dsl/
    query-dsl-range-query): a document without the field never matches. Bounds written as
    text are dates, read in the default format strict_date_optional_time, where a time
    without a zone is UTC; numbers compare as numbers."""
    (field_name, bounds), *_ = spec.items()
    actual = field_value(source, field_name)
    if actual is None:
        return False
    for operator, bound in bounds.items():
        if operator in _RANGE_OPTIONS:
            continue
        if operator not in _RANGE_OPERATORS:
            raise bad_request(f"[range] query does not support [{operator}]", "parsing_exception")
        if isinstance(bound, str):
            left, right = _epoch_millis(actual), _epoch_millis(bound)
        else:
            left, right = float(actual), float(bound)
        if not _RANGE_OPERATORS[operator](left, right):
            return False
    return True


def _epoch_millis(value: Any) -> int:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# Lucene's haversine uses the WGS 84 mean radius (GeoUtils.EARTH_MEAN_RADIUS_METERS).
_EARTH_MEAN_RADIUS_METERS = 6_371_008.7714
# Distance units (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/api-conventions
# #distance-units); a distance without a unit is in meters.
_DISTANCE_UNITS = {"km": 1000.0, "m": 1.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048}


def _within_distance(spec: Json, source: Json) -> bool:
    """`geo_distance` (https://www.elastic.co/docs/reference/query-languages/query-dsl/
    query-dsl-geo-distance-query) with the default `arc` distance: documents whose point
    lies within `distance` of the centre; a document without the field never matches."""
    options = {"distance", "distance_type", "validation_method", "_name", "boost"}
    (field_name, centre), *_ = [(k, v) for k, v in spec.items() if k not in options]
    point = field_value(source, field_name)
    if not isinstance(point, dict):
        return False
    written = str(spec["distance"]).strip()
    unit = next(
        (u for u in sorted(_DISTANCE_UNITS, key=len, reverse=True) if written.endswith(u)), ""
    )
    meters = float(written.removesuffix(unit)) * _DISTANCE_UNITS.get(unit, 1.0)
    lat1, lon1 = math.radians(float(centre["lat"])), math.radians(float(centre["lon"]))
    lat2, lon2 = math.radians(float(point["lat"])), math.radians(float(point["lon"]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_MEAN_RADIUS_METERS * math.asin(min(1.0, math.sqrt(h))) <= meters


def _sort_value(index: Index, name: str, value: Any) -> Any:
    """Dates sort as instants (epoch milliseconds, what `sort` values show for a date field:
    https://www.elastic.co/docs/reference/elasticsearch/rest-apis/sort-search-results), not
    as the strings they were written as."""
    if value is not None and name in index.date_fields():
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    return value


def _sort_specs(sort: Any) -> list[tuple[str, str]]:
    specs = []
    for spec in as_list(sort):
        name, order = (spec, "asc") if isinstance(spec, str) else next(iter(spec.items()))
        if isinstance(order, dict):
            order = order.get("order", "asc")
        specs.append((name, order))
    return specs


def _sorted(scored: list[Scored], sort: Any) -> list[Scored]:
    """Sort by field values, missing ones last; `_score` by score; `_doc` keeps index order."""
    for name, order in reversed(_sort_specs(sort)):
        if name == "_doc":
            continue
        if name == "_score":
            scored = sorted(scored, key=lambda s: s[2], reverse=order != "asc")
            continue

        def value(item: Scored, field: str = name) -> Any:
            index, doc_id, _ = item
            return _sort_value(index, field, field_value(index.searchable[doc_id], field))

        present = [s for s in scored if value(s) is not None]
        missing = [s for s in scored if value(s) is None]
        present.sort(key=value, reverse=order == "desc")
        scored = present + missing
    return scored


def _hit(
    index: Index, doc_id: str, score: float, source_spec: Any, fields: list[str], sort: Any
) -> Json:
    source = index.searchable[doc_id]
    hit: Json = {"_index": index.name, "_id": doc_id, "_score": score}
    if source_spec is not False:
        hit["_source"] = filter_source(source, source_spec, index)
    if fields:
        found = {}
        for pattern in fields:
            for key, value in source.items():
                if fnmatch.fnmatchcase(key, pattern) and value is not None:
                    found[key] = copy.deepcopy(value) if isinstance(value, list) else [value]
        if found:
            hit["fields"] = found
    if sort:
        hit["sort"] = [
            score if name == "_score" else _sort_value(index, name, field_value(source, name))
            for name, _ in _sort_specs(sort)
        ]
    return hit
