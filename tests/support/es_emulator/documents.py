"""Documents: `_bulk`, single-document index/get/delete, `_mget`, `_refresh` and `_reindex`."""

from __future__ import annotations

import copy
import fnmatch
import json
from typing import Any

import numpy as np

from tests.support.es_emulator.common import (
    EmulatorState,
    EsError,
    Index,
    Json,
    as_list,
    bad_request,
)
from tests.support.es_emulator.indices import dynamic_mapping

BULK_OPERATIONS = {"index", "create", "update", "delete"}


class DocumentsMixin(EmulatorState):
    _rejections: list[tuple[int, int]]
    _refused: tuple[set[str], int]

    def _parse_bulk(self, body: bytes) -> list[tuple[str, Json, Json | None]]:
        """The whole body is parsed before any item runs, so a malformed line fails the whole
        request with a 400 and writes nothing (BulkRequestParser in elastic/elasticsearch:
        "Malformed action/metadata line [N], expected ..."; the body must end with a newline:
        https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-bulk)."""
        text = body.decode("utf-8")
        if text and not text.endswith("\n"):
            raise bad_request("The bulk request must be terminated by a newline [\\n]")
        lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        if not lines:
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: no requests added;",
            )
        operations: list[tuple[str, Json, Json | None]] = []
        position = 0
        while position < len(lines):
            number, line = lines[position]
            position += 1
            header = _json_line(line, number)
            if not isinstance(header, dict) or len(header) != 1:
                found = "START_ARRAY" if isinstance(header, list) else "VALUE_STRING"
                raise bad_request(
                    f"Malformed action/metadata line [{number}], expected START_OBJECT but "
                    f"found [{found}]"
                )
            (op, meta), *_ = header.items()
            if op not in BULK_OPERATIONS:
                raise bad_request(
                    f"Malformed action/metadata line [{number}], expected field [create], "
                    f"[delete], [index] or [update] but found [{op}]"
                )
            source = None
            if op != "delete":
                if position >= len(lines):
                    raise bad_request(f"Malformed action/metadata line [{number}]: no source")
                source_number, source_line = lines[position]
                position += 1
                source = _json_line(source_line, source_number)
            operations.append((op, meta, source))
        return operations

    def _bulk(self, default_index: str | None, body: bytes, params: dict[str, str]) -> Json:
        items: list[Json] = []
        touched: set[str] = set()
        for op, meta, source in self._parse_bulk(body):
            index_name = meta.get("_index", default_index)
            doc_id = meta.get("_id")
            rejected = self._take_rejection()
            refused_ids, refused_status = self._refused
            if rejected is None and doc_id in refused_ids:
                items.append(
                    _item_error(
                        op,
                        index_name,
                        doc_id,
                        refused_status,
                        {
                            "type": "document_parsing_exception",
                            "reason": "[1:1] failed to parse: refused by the test",
                        },
                    )
                )
                continue
            if rejected is not None:
                # What a busy node answers per item (429 es_rejected_execution_exception):
                # https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-bulk
                items.append(
                    _item_error(
                        op,
                        index_name,
                        doc_id,
                        rejected,
                        {
                            "type": "es_rejected_execution_exception",
                            "reason": "rejected execution of coordinating operation",
                        },
                    )
                )
                continue
            try:
                if params.get("require_alias") == "true" and not self._is_alias(index_name):
                    # bulk/10_basic.yml "When setting require_alias flag per request".
                    raise EsError(
                        404,
                        "index_not_found_exception",
                        f"no such index [{index_name}] and [require_alias] request flag is [true] "
                        f"and [{index_name}] is not an alias",
                        index=index_name,
                    )
                index = self._resolve_write(index_name)
                if op in {"index", "create"}:
                    status, result = self._store_doc(index, doc_id, source or {}, op == "create")
                elif op == "delete":
                    status, result = self._remove_doc(index, doc_id)
                else:
                    raise bad_request("the emulator does not implement bulk [update]")
                touched.add(index.name)
                items.append({op: {**result, "status": status}})
            except EsError as error:
                error_body = {k: v for k, v in error.body["error"].items() if k != "root_cause"}
                items.append(_item_error(op, index_name, doc_id, error.status, error_body))
        if params.get("refresh") in {"true", "", "wait_for"}:
            self._refresh(sorted(touched))
        return {
            "errors": any("error" in next(iter(item.values())) for item in items),
            "took": 1,
            "items": items,
        }

    def _take_rejection(self) -> int | None:
        if not self._rejections:
            return None
        count, status = self._rejections[0]
        if count <= 1:
            self._rejections.pop(0)
        else:
            self._rejections[0] = (count - 1, status)
        return status

    def _store_doc(
        self,
        index: Index,
        doc_id: str | None,
        source: Json,
        create_only: bool,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Json]:
        if doc_id is None:
            doc_id = f"auto-{len(index.versions) + 1}"
        if create_only and doc_id in index.docs:
            # op_type=create (or _create): "If the document already exists, the request
            # fails" with 409 (https://www.elastic.co/docs/api/doc/elasticsearch/operation/
            # operation-index, op_type).
            raise EsError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists (current version "
                f"[{index.versions[doc_id]}])",
            )
        _check_sequence(index, doc_id, params or {})
        self._check_source(index, source)
        created = doc_id not in index.docs
        index.docs[doc_id] = copy.deepcopy(source)
        index.versions[doc_id] = index.versions.get(doc_id, 0) + 1
        return (201 if created else 200), {
            "_index": index.name,
            "_id": doc_id,
            "_version": index.versions[doc_id],
            "result": "created" if created else "updated",
            **_sequenced(index, doc_id),
        }

    def _check_source(self, index: Index, source: Json) -> None:
        dynamic = str(index.mappings.get("dynamic", "true")).lower()
        for field_name, value in source.items():
            spec = index.properties().get(field_name)
            if spec is None:
                if dynamic == "strict":
                    # https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/
                    # dynamic: "strict" rejects the document; StrictDynamicMappingException's
                    # text (server/.../index/mapper/StrictDynamicMappingException.java).
                    raise EsError(
                        400,
                        "strict_dynamic_mapping_exception",
                        f"[1:2] mapping set to strict, dynamic introduction of [{field_name}] "
                        "within [_doc] is not allowed",
                    )
                if dynamic == "true":
                    index.properties()[field_name] = dynamic_mapping(value)
                continue
            if value is None:
                continue
            if spec.get("type") == "dense_vector":
                if not isinstance(value, list) or len(value) != spec.get("dims", len(value)):
                    # DenseVectorFieldMapper's message; 40_knn_search.yml checks the 400.
                    raise EsError(
                        400,
                        "document_parsing_exception",
                        f"[1:1] failed to parse: The [dense_vector] field [{field_name}] in doc "
                        f"[document] has a different number of dimensions [{len(value)}] than "
                        f"defined in the mapping [{spec.get('dims')}]",
                    )
                if spec.get("similarity", "cosine") == "cosine" and not np.any(value):
                    raise EsError(
                        400,
                        "document_parsing_exception",
                        f"[1:1] failed to parse: The [cosine] similarity does not support "
                        f"vectors with zero magnitude. Preview of invalid vector: {value[:5]}",
                    )
            if spec.get("type") == "keyword" and isinstance(value, dict | int | float):
                raise EsError(
                    400,
                    "document_parsing_exception",
                    f"[1:1] failed to parse field [{field_name}] of type [keyword]",
                )

    def _remove_doc(
        self, index: Index, doc_id: str, params: dict[str, str] | None = None
    ) -> tuple[int, Json]:
        _check_sequence(index, doc_id, params or {})
        found = index.docs.pop(doc_id, None) is not None
        index.versions[doc_id] = index.versions.get(doc_id, 0) + 1
        return (200 if found else 404), {
            "_index": index.name,
            "_id": doc_id,
            "_version": index.versions[doc_id],
            "result": "deleted" if found else "not_found",
            **_sequenced(index, doc_id),
        }

    def _index_doc(
        self,
        name: str,
        doc_id: str,
        source: Json,
        params: dict[str, str],
        create_only: bool = False,
    ) -> tuple[int, Json]:
        """PUT /<index>/_doc/<id> (op_type=create refuses an existing document, as PUT
        /<index>/_create/<id> does), with if_seq_no and if_primary_term checked."""
        index = self._resolve_write(name)
        create_only = create_only or params.get("op_type") == "create"
        status, result = self._store_doc(index, doc_id, source, create_only, params)
        if params.get("refresh") in {"true", "", "wait_for"}:
            self._refresh([index.name])
        return status, result

    def _delete_doc(self, name: str, doc_id: str, params: dict[str, str]) -> tuple[int, Json]:
        index = self._resolve_write(name)
        status, result = self._remove_doc(index, doc_id, params)
        if params.get("refresh") in {"true", "", "wait_for"}:
            self._refresh([index.name])
        return status, result

    def _single_index(self, name: str) -> Index:
        names = self._resolve_read(name)
        if len(names) != 1:
            # A get through an alias on several indices (indices.get_alias YAML tests).
            raise bad_request(
                f"alias [{name}] has more than one index associated with it [{names}], "
                "can't execute a single index op"
            )
        return self._indices[names[0]]

    def _get_doc(self, name: str, doc_id: str, params: dict[str, str]) -> tuple[int, Json]:
        """Realtime: a get sees the latest write without a refresh (get/10_basic.yml;
        https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-get)."""
        index = self._single_index(name)
        return self._found(index, doc_id, self._source_spec(params))

    def _found(self, index: Index, doc_id: str, spec: Any) -> tuple[int, Json]:
        source = index.docs.get(doc_id)
        if source is None:
            return 404, {"_index": index.name, "_id": doc_id, "found": False}
        answer = {
            "_index": index.name,
            "_id": doc_id,
            "_version": index.versions[doc_id],
            "_seq_no": index.seq_nos.get(doc_id, 0),
            "_primary_term": 1,
            "found": True,
        }
        if spec is not False:
            answer["_source"] = filter_source(source, spec, index)
        return 200, answer

    def _mget(self, default_index: str | None, body: Json, params: dict[str, str]) -> Json:
        """One answer per requested document, in order, realtime like get; `ids` with the
        index in the path, or `docs` each with its own `_index` and `_source`
        (mget/10_basic.yml, mget/70_source_filtering.yml)."""
        default_spec = self._source_spec(params)
        requests: list[Json] = [{"_id": doc_id} for doc_id in body.get("ids", [])]
        requests += body.get("docs", [])
        answers = []
        for request in requests:
            name = request.get("_index", default_index)
            if name is None:
                raise EsError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing for doc 0;",
                )
            spec = request.get("_source", default_spec)
            self._check_source_spec(spec)
            try:
                index = self._single_index(name)
            except EsError as error:
                error_body = {k: v for k, v in error.body["error"].items() if k != "root_cause"}
                answers.append({"_index": name, "_id": request["_id"], "error": error_body})
                continue
            answers.append(self._found(index, str(request["_id"]), spec)[1])
        return {"docs": answers}

    def _refresh(self, names: list[str]) -> Json:
        for name in names:
            index = self._indices[name]
            index.searchable = copy.deepcopy(index.docs)
        return {"_shards": {"total": len(names), "successful": len(names), "failed": 0}}

    def _reindex(self, body: Json, params: dict[str, str]) -> Json:
        """Copies the matching documents, whole: vectors left out of _source by default in 9.2
        are still copied (https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/
        dense-vector: excluded vectors are rehydrated for reindex). Only what a search sees
        is copied (reindex reads with a scroll). Synchronous, as wait_for_completion=true.
        https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-reindex"""
        from tests.support.es_emulator.search import matches

        source_spec, dest_spec = body.get("source", {}), body.get("dest", {})
        query = source_spec.get("query", {"match_all": {}})
        dest = self._resolve_write(dest_spec["index"])
        created = updated = 0
        failures: list[Json] = []
        for name in self._resolve_read(",".join(as_list(source_spec.get("index")))):
            for doc_id, source in sorted(self._indices[name].searchable.items()):
                if not matches(query, doc_id, source):
                    continue
                try:
                    status, _ = self._store_doc(dest, doc_id, source, False)
                except EsError as error:
                    failures.append({"index": dest.name, "id": doc_id, **error.body})
                    if body.get("conflicts") != "proceed":
                        break
                    continue
                created += status == 201
                updated += status == 200
        if params.get("refresh") == "true":
            self._refresh([dest.name])
        return {
            "took": 1,
            "timed_out": False,
            "total": created + updated + len(failures),
            "created": created,
            "updated": updated,
            "deleted": 0,
            "batches": 1,
            "version_conflicts": 0,
            "noops": 0,
            "failures": failures,
        }

    def _source_spec(self, params: dict[str, str]) -> Any:
        if params.get("_source") in {"false", "true"}:
            return params["_source"] == "true"
        spec: Json = {}
        if "_source_includes" in params or "_source" in params:
            spec["includes"] = (params.get("_source_includes") or params["_source"]).split(",")
        if "_source_excludes" in params:
            spec["excludes"] = params["_source_excludes"].split(",")
        if "_source_exclude_vectors" in params:
            spec["exclude_vectors"] = params["_source_exclude_vectors"] == "true"
        self._check_source_spec(spec)
        return spec or True

    def _check_source_spec(self, spec: Any) -> None:
        # `exclude_vectors` is a 9.2 addition; earlier versions do not know the key.
        if isinstance(spec, dict) and "exclude_vectors" in spec and self._version() < (9, 2):
            raise EsError(
                400, "x_content_parse_exception", "[1:1] [_source] unknown field [exclude_vectors]"
            )


def filter_source(source: Json, spec: Any, index: Index) -> Json:
    """Source filtering (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/
    retrieve-selected-fields#source-filtering), and from 9.2 vectors left out unless
    `exclude_vectors: false` (or the index setting) asks for them. Whether naming a vector
    in `includes` brings it back in 9.2 is not stated in the docs; the emulator takes the
    stricter reading (it does not), and findimage asks with `exclude_vectors: false`."""
    if spec is True or spec is None:
        spec = {}
    if isinstance(spec, str):
        spec = {"includes": [spec]}
    if isinstance(spec, list):
        spec = {"includes": spec}
    includes = as_list(spec.get("includes") or spec.get("include"))
    excludes = as_list(spec.get("excludes") or spec.get("exclude"))
    exclude_vectors = spec.get("exclude_vectors", index.excludes_vectors())
    result = {}
    for key, value in source.items():
        if includes and not any(fnmatch.fnmatchcase(key, p) for p in includes):
            continue
        if any(fnmatch.fnmatchcase(key, p) for p in excludes):
            continue
        if key in index.vector_fields() and exclude_vectors:
            continue
        result[key] = copy.deepcopy(value)
    return result


def _json_line(line: str, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise bad_request(
            f"Malformed action/metadata line [{number}], expected START_OBJECT but found "
            "[VALUE_STRING]"
        ) from None


def _item_error(op: str, index: str | None, doc_id: str | None, status: int, error: Json) -> Json:
    return {op: {"_index": index, "_id": doc_id, "status": status, "error": error}}


def _check_sequence(index: Index, doc_id: str, params: dict[str, str]) -> None:
    """if_seq_no and if_primary_term: the write applies only if the document's last change
    has that sequence number and primary term, else 409 version_conflict_engine_exception
    (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/
    optimistic-concurrency-control; the reasons are InternalEngine's)."""
    if "if_seq_no" not in params and "if_primary_term" not in params:
        return
    wanted, term = int(params.get("if_seq_no", -2)), int(params.get("if_primary_term", 0))
    required = f"[{doc_id}]: version conflict, required seqNo [{wanted}], primary term [{term}]"
    if doc_id not in index.docs:
        raise EsError(
            409, "version_conflict_engine_exception", f"{required}. but no document was found"
        )
    current = index.seq_nos.get(doc_id, 0)
    if (current, 1) != (wanted, term):
        raise EsError(
            409,
            "version_conflict_engine_exception",
            f"{required}. current document has seqNo [{current}] and primary term [1]",
        )


def _sequenced(index: Index, doc_id: str) -> Json:
    """The next sequence number, given to this write or delete."""
    index.seq_nos[doc_id] = index.next_seq_no
    index.next_seq_no += 1
    return {"_seq_no": index.seq_nos[doc_id], "_primary_term": 1}
