"""An in-process Elasticsearch stand-in for the tests, spoken to over HTTP by the real client.

It implements only the REST calls findimage makes, and answers them the way Elasticsearch
documents them and its REST YAML tests check: index and alias management with atomic
`_aliases`, `_bulk` with per-item results, realtime `_doc` gets, searches that see only
refreshed documents, exact kNN with Elasticsearch's similarity scores, `query_vector_builder`
and `_infer` backed by a Python callable, scrolls, the product header and the compatible
media type. Vectors are searched exactly whatever `index_options` says, so quantized index
types behave like `hnsw` here.

Hooks for the failure tests: `reject_bulk_items` (429 on the next bulk items),
`refuse_documents` (an error for chosen documents, every time), `stop` and
`start` (an outage on the same port), `stall` (a server that accepts but never answers),
`before_request` (to act at a chosen request, or drop it unanswered).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fnmatch
import itertools
import json
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

Encode = Callable[[list[str]], Sequence[Sequence[float]]]
Json = dict[str, Any]

VERSION = "9.1.0"
MAX_NUM_CANDIDATES = 10_000
MAX_DIMS = 4096
SIMILARITIES = {"cosine", "dot_product", "l2_norm", "max_inner_product"}
INDEX_TYPES = {
    "hnsw",
    "int8_hnsw",
    "int4_hnsw",
    "bbq_hnsw",
    "flat",
    "int8_flat",
    "int4_flat",
    "bbq_flat",
}
STALL_LIMIT_SECONDS = 60.0


class EsError(Exception):
    """An error answer, shaped as Elasticsearch shapes them."""

    def __init__(self, status: int, error_type: str, reason: str, **extra: Any):
        super().__init__(reason)
        self.status = status
        cause = {"type": error_type, "reason": reason, **extra}
        self.body: Json = {"error": {"root_cause": [cause], **cause}, "status": status}


def _index_not_found(name: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        **{"resource.type": "index_or_alias", "resource.id": name},
        index_uuid="_na_",
        index=name,
    )


def _bad_request(reason: str, error_type: str = "illegal_argument_exception") -> EsError:
    return EsError(400, error_type, reason)


@dataclass
class _Index:
    name: str
    mappings: Json
    settings: Json
    aliases: dict[str, Json] = field(default_factory=dict)
    docs: dict[str, Json] = field(default_factory=dict)
    searchable: dict[str, Json] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def properties(self) -> Json:
        return self.mappings.setdefault("properties", {})

    def vector_fields(self) -> set[str]:
        return {
            name for name, spec in self.properties().items() if spec.get("type") == "dense_vector"
        }

    def excludes_vectors(self) -> bool:
        value = self.settings.get("index", {}).get("mapping.exclude_source_vectors", "true")
        return str(value).lower() == "true"


@dataclass
class TrainedModel:
    encode: Encode | None
    state: str = "started"


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ElasticsearchEmulator:
    def __init__(
        self,
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self._api_key = api_key
        self._basic = basic_auth
        self._ssl_context = ssl_context
        self._lock = threading.RLock()
        self._indices: dict[str, _Index] = {}
        self._models: dict[str, TrainedModel] = {}
        self._scrolls: dict[str, tuple[int, list[Json]]] = {}
        self._scroll_ids = itertools.count(1)
        self._rejections: list[tuple[int, int]] = []
        self._refused: tuple[set[str], int] = (set(), 400)
        self._stall = threading.Event()
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.requests: list[RecordedRequest] = []
        # Called as (method, path) before a request is served; returning False drops it unserved.
        self.before_request: Callable[[str, str], bool] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> ElasticsearchEmulator:
        """Serve on 127.0.0.1, on the same port as before when restarted."""
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        server.daemon_threads = True
        if self._ssl_context is not None:
            server.socket = self._ssl_context.wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]
        self._server = server
        self._release.clear()
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """An outage: stop listening and cut every open connection. The data is kept."""
        server, self._server = self._server, None
        if server is None:
            return
        self._release.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ElasticsearchEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- hooks for the tests ---------------------------------------------------------------

    def deploy_model(self, model_id: str, encode: Encode | None, state: str = "started") -> None:
        """A trained model as eland would import it; `state` None means imported, not started."""
        with self._lock:
            self._models[model_id] = TrainedModel(encode=encode, state=state)

    def reject_bulk_items(self, count: int, status: int = 429) -> None:
        """Answer the next `count` bulk items with `status` (429: too many requests)."""
        with self._lock:
            self._rejections.append((count, status))

    def refuse_documents(self, doc_ids: set[str], status: int = 400) -> None:
        """Answer every bulk item for these ids with a `status` error, until cleared with set()."""
        with self._lock:
            self._refused = (set(doc_ids), status)

    def stall(self, stalled: bool = True) -> None:
        """Accept requests but answer none until un-stalled or stopped."""
        if stalled:
            self._release.clear()
            self._stall.set()
        else:
            self._stall.clear()
            self._release.set()

    def index_names(self) -> list[str]:
        with self._lock:
            return sorted(self._indices)

    def aliases(self) -> dict[str, list[str]]:
        with self._lock:
            result: dict[str, list[str]] = {}
            for index in self._indices.values():
                for alias in index.aliases:
                    result.setdefault(alias, []).append(index.name)
            return {alias: sorted(names) for alias, names in result.items()}

    def mapping(self, name: str) -> Json:
        with self._lock:
            return copy.deepcopy(self._resolve_one(name).mappings)

    # --- request handling ------------------------------------------------------------------

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Json | None, dict[str, str]]:
        if self._stall.is_set():
            self._release.wait(STALL_LIMIT_SECONDS)
        parts = urlsplit(target)
        hook = self.before_request
        if hook is not None and hook(method, parts.path) is False:
            return 0, None, {}
        path = [unquote(p) for p in parts.path.split("/") if p]
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.requests.append(RecordedRequest(method, parts.path, params, headers, body))
        reply_headers = {"X-Elastic-Product": "Elasticsearch"}
        try:
            self._check_media_type(headers)
            self._authenticate(headers)
            status, payload = self._route(method, path, params, headers, body)
        except EsError as error:
            status, payload = error.status, error.body
            if status == 401:
                reply_headers["WWW-Authenticate"] = 'ApiKey, Basic realm="security"'
        return status, payload, reply_headers

    def _check_media_type(self, headers: dict[str, str]) -> None:
        for name in ("accept", "content-type"):
            value = headers.get(name, "")
            if "compatible-with=" in value:
                version = value.split("compatible-with=")[1].split(";")[0].strip()
                if version not in {"8", "9"}:
                    raise EsError(
                        400,
                        "media_type_header_exception",
                        f"Invalid media-type value on headers [{name}]: {value}",
                    )

    def _authenticate(self, headers: dict[str, str]) -> None:
        if self._api_key is None and self._basic is None:
            return
        given = headers.get("authorization", "")
        accepted = set()
        if self._api_key is not None:
            accepted.add(f"ApiKey {self._api_key}")
        if self._basic is not None:
            token = base64.b64encode(":".join(self._basic).encode()).decode()
            accepted.add(f"Basic {token}")
        if given in accepted:
            return
        if not given:
            reason = "missing authentication credentials for REST request"
        else:
            reason = "unable to authenticate with provided credentials"
        raise EsError(401, "security_exception", reason)

    def _route(
        self, method: str, path: list[str], params: dict[str, str], headers: Json, body: bytes
    ) -> tuple[int, Json | None]:
        with self._lock:
            if not path:
                return 200, self._info()
            if path[0] == "_bulk":
                return 200, self._bulk(None, body, params)
            if path[0] == "_aliases":
                return 200, self._update_aliases(_json(body))
            if path[0] == "_alias":
                return self._get_alias(None, path[1] if len(path) > 1 else None, method)
            if path[0] == "_refresh":
                return 200, self._refresh(list(self._indices))
            if path[:2] == ["_search", "scroll"]:
                if method == "DELETE":
                    return 200, self._clear_scroll(_json(body))
                return 200, self._scroll(_json(body))
            if path[0] == "_ml" and len(path) >= 4 and path[1] == "trained_models":
                return self._ml(path[2], path[3:], _json(body))
            if path[0].startswith("_"):
                raise _bad_request(f"no handler found for uri [/{'/'.join(path)}]")
            return self._route_index(method, path, params, body)

    def _route_index(
        self, method: str, path: list[str], params: dict[str, str], body: bytes
    ) -> tuple[int, Json | None]:
        name = path[0]
        if len(path) == 1:
            if method == "HEAD":
                return (200 if self._exists(name) else 404), None
            if method == "PUT":
                return 200, self._create(name, _json(body))
            if method == "DELETE":
                return 200, self._delete_index(name)
            if method == "GET":
                return 200, self._get_index(name)
        action = path[1]
        if action == "_mapping":
            if method in {"PUT", "POST"}:
                return 200, self._put_mapping(name, _json(body))
            return 200, self._get_mapping(name)
        if action == "_alias":
            return self._get_alias(name, path[2] if len(path) > 2 else None, method)
        if action == "_bulk":
            return 200, self._bulk(name, body, params)
        if action == "_doc" and len(path) == 3:
            if method == "GET":
                return self._get_doc(name, path[2], params)
            if method in {"PUT", "POST"}:
                return self._index_doc(name, path[2], _json(body), params)
            if method == "DELETE":
                return self._delete_doc(name, path[2], params)
        if action == "_count":
            return 200, self._count(name, _json(body))
        if action == "_search":
            return 200, self._search(name, _json(body), params)
        if action == "_refresh":
            return 200, self._refresh(self._resolve_read(name))
        raise _bad_request(f"no handler found for uri [/{'/'.join(path)}] and method [{method}]")

    # --- cluster -----------------------------------------------------------------------------

    def _info(self) -> Json:
        return {
            "name": "emulator",
            "cluster_name": "findimage-tests",
            "cluster_uuid": "emulated",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "minimum_wire_compatibility_version": "8.19.0",
                "minimum_index_compatibility_version": "8.0.0",
            },
            "tagline": "You Know, for Search",
        }

    # --- indices and aliases -----------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        return name in self._indices or any(name in i.aliases for i in self._indices.values())

    def _is_alias(self, name: str) -> bool:
        return any(name in i.aliases for i in self._indices.values())

    def _resolve_read(self, name: str) -> list[str]:
        names: list[str] = []
        for part in name.split(","):
            if part in self._indices:
                names.append(part)
                continue
            matched = [i.name for i in self._indices.values() if part in i.aliases]
            if not matched and any(c in part for c in "*?"):
                matched = [n for n in self._indices if fnmatch.fnmatchcase(n, part)]
            if not matched:
                raise _index_not_found(part)
            names.extend(matched)
        return sorted(set(names))

    def _resolve_one(self, name: str) -> _Index:
        names = self._resolve_read(name)
        return self._indices[names[0]]

    def _resolve_write(self, name: str) -> _Index:
        """The index a write to `name` lands in; an unknown name is created, as ES does."""
        if name in self._indices:
            return self._indices[name]
        holders = [i for i in self._indices.values() if name in i.aliases]
        if not holders:
            self._create(name, {})
            return self._indices[name]
        if len(holders) == 1:
            return holders[0]
        writers = [i for i in holders if i.aliases[name].get("is_write_index")]
        if len(writers) != 1:
            raise _bad_request(
                f"no write index is defined for alias [{name}]. The write index may be explicitly "
                "disabled using is_write_index=false or the alias points to multiple indices "
                "without one being designated as a write index"
            )
        return writers[0]

    def _create(self, name: str, body: Json) -> Json:
        if self._exists(name):
            kind = "index" if name in self._indices else "alias"
            if kind == "alias":
                raise _bad_request(f"Invalid index name [{name}], already exists as alias")
            raise EsError(
                400,
                "resource_already_exists_exception",
                f"index [{name}/emulated] already exists",
                index=name,
            )
        if name != name.lower() or name.startswith(("_", "-", "+")):
            raise _bad_request(f"Invalid index name [{name}]", "invalid_index_name_exception")
        mappings = copy.deepcopy(body.get("mappings", {}))
        for field_name, spec in mappings.get("properties", {}).items():
            _check_field_mapping(field_name, spec)
        index = _Index(name=name, mappings=mappings, settings=_nested_settings(body))
        for alias, options in body.get("aliases", {}).items():
            self._check_alias_name(alias, name)
            index.aliases[alias] = dict(options or {})
        self._indices[name] = index
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _delete_index(self, name: str) -> Json:
        if name not in self._indices:
            if self._exists(name):
                raise _bad_request(
                    f"The provided expression [{name}] matches an alias, specify the "
                    "corresponding concrete indices instead."
                )
            raise _index_not_found(name)
        del self._indices[name]
        return {"acknowledged": True}

    def _get_index(self, name: str) -> Json:
        return {
            n: {
                "aliases": copy.deepcopy(self._indices[n].aliases),
                "mappings": copy.deepcopy(self._indices[n].mappings),
                "settings": copy.deepcopy(self._indices[n].settings),
            }
            for n in self._resolve_read(name)
        }

    def _get_mapping(self, name: str) -> Json:
        return {
            n: {"mappings": copy.deepcopy(self._indices[n].mappings)}
            for n in self._resolve_read(name)
        }

    def _put_mapping(self, name: str, body: Json) -> Json:
        for index_name in self._resolve_read(name):
            index = self._indices[index_name]
            for field_name, spec in body.get("properties", {}).items():
                _check_field_mapping(field_name, spec)
                existing = index.properties().get(field_name)
                if existing is not None and existing.get("type") != spec.get("type"):
                    raise _bad_request(
                        f"mapper [{field_name}] cannot be changed from type "
                        f"[{existing.get('type')}] to [{spec.get('type')}]"
                    )
                if existing is not None and existing.get("dims", spec.get("dims")) != spec.get(
                    "dims", existing.get("dims")
                ):
                    raise _bad_request(
                        f"Mapper for [{field_name}] conflicts with existing mapper: "
                        "Cannot update parameter [dims]"
                    )
                index.properties()[field_name] = copy.deepcopy(spec)
            if "_meta" in body:
                index.mappings["_meta"] = copy.deepcopy(body["_meta"])
        return {"acknowledged": True}

    def _check_alias_name(self, alias: str, index: str) -> None:
        if alias in self._indices:
            raise EsError(
                400,
                "invalid_alias_name_exception",
                f"Invalid alias name [{alias}]: an index or data stream exists with the same "
                "name as the alias",
            )
        if alias == index:
            raise EsError(400, "invalid_alias_name_exception", f"Invalid alias name [{alias}]")

    def _get_alias(self, index: str | None, alias: str | None, method: str) -> tuple[int, Json]:
        candidates = self._resolve_read(index) if index else sorted(self._indices)
        result: Json = {}
        for name in candidates:
            found = {
                a: copy.deepcopy(o)
                for a, o in self._indices[name].aliases.items()
                if alias is None or fnmatch.fnmatchcase(a, alias)
            }
            if found or alias is None:
                result[name] = {"aliases": found}
        if alias is not None and not result:
            if method == "HEAD":
                return 404, {}
            return 404, {"error": f"alias [{alias}] missing", "status": 404}
        return 200, result

    def _update_aliases(self, body: Json) -> Json:
        """All actions apply, or none: the state is swapped in only when every one succeeded."""
        staged = {name: dict(index.aliases) for name, index in self._indices.items()}
        removed_indices: set[str] = set()
        for action in body.get("actions", []):
            (kind, options), *_ = action.items()
            names = _as_list(options.get("index") or options.get("indices"))
            aliases = _as_list(options.get("alias") or options.get("aliases"))
            targets = [t for name in names for t in self._resolve_read(name)]
            if kind == "add":
                for target in targets:
                    for alias in aliases:
                        self._check_alias_name(alias, target)
                        extra = {k: v for k, v in options.items() if k == "is_write_index"}
                        staged[target][alias] = extra
            elif kind == "remove":
                for target in targets:
                    for alias in aliases:
                        if alias not in staged[target]:
                            if options.get("must_exist"):
                                raise EsError(
                                    404,
                                    "aliases_not_found_exception",
                                    f"aliases [{alias}] missing",
                                )
                            continue
                        del staged[target][alias]
            elif kind == "remove_index":
                removed_indices.update(targets)
            else:
                raise _bad_request(f"[aliases] unknown field [{kind}]", "x_content_parse_exception")
        for name, aliases in staged.items():
            self._indices[name].aliases = aliases
        for name in removed_indices:
            del self._indices[name]
        return {"acknowledged": True, "errors": False}

    # --- documents ---------------------------------------------------------------------------

    def _bulk(self, default_index: str | None, body: bytes, params: dict[str, str]) -> Json:
        lines = [line for line in body.decode("utf-8").split("\n") if line.strip()]
        items: list[Json] = []
        touched: set[str] = set()
        position = 0
        while position < len(lines):
            header = json.loads(lines[position])
            position += 1
            (op, meta), *_ = header.items()
            source = None
            if op in {"index", "create", "update"}:
                source = json.loads(lines[position])
                position += 1
            index_name = meta.get("_index", default_index)
            doc_id = meta.get("_id")
            rejected = self._take_rejection()
            refused_ids, refused_status = self._refused
            if rejected is None and doc_id in refused_ids:
                items.append(
                    {
                        op: {
                            "_index": index_name,
                            "_id": doc_id,
                            "status": refused_status,
                            "error": {
                                "type": "document_parsing_exception",
                                "reason": "[1:1] failed to parse: refused by the test",
                            },
                        }
                    }
                )
                continue
            if rejected is not None:
                items.append(
                    {
                        op: {
                            "_index": index_name,
                            "_id": doc_id,
                            "status": rejected,
                            "error": {
                                "type": "es_rejected_execution_exception",
                                "reason": "rejected execution of coordinating operation",
                            },
                        }
                    }
                )
                continue
            try:
                if params.get("require_alias") == "true" and not self._is_alias(index_name):
                    raise EsError(
                        404,
                        "index_not_found_exception",
                        f"no such index [{index_name}] and [require_alias] request flag is [true] "
                        f"and [{index_name}] is not an alias",
                        index=index_name,
                    )
                if op in {"index", "create"}:
                    index = self._resolve_write(index_name)
                    status, result = self._store_doc(index, doc_id, source, op == "create")
                elif op == "delete":
                    index = self._resolve_write(index_name)
                    status, result = self._remove_doc(index, doc_id)
                else:
                    raise _bad_request(f"Malformed action/metadata line, unsupported [{op}]")
                touched.add(index.name)
                items.append({op: {**result, "status": status}})
            except EsError as error:
                error_body = {k: v for k, v in error.body["error"].items() if k != "root_cause"}
                items.append(
                    {
                        op: {
                            "_index": index_name,
                            "_id": doc_id,
                            "status": error.status,
                            "error": error_body,
                        }
                    }
                )
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
        self, index: _Index, doc_id: str | None, source: Json, create_only: bool
    ) -> tuple[int, Json]:
        if doc_id is None:
            doc_id = f"auto-{len(index.versions) + 1}"
        if create_only and doc_id in index.docs:
            raise EsError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists",
            )
        self._check_source(index, source)
        created = doc_id not in index.docs
        index.docs[doc_id] = copy.deepcopy(source)
        index.versions[doc_id] = index.versions.get(doc_id, 0) + 1
        return (201 if created else 200), {
            "_index": index.name,
            "_id": doc_id,
            "_version": index.versions[doc_id],
            "result": "created" if created else "updated",
        }

    def _check_source(self, index: _Index, source: Json) -> None:
        for field_name, value in source.items():
            spec = index.properties().get(field_name)
            if spec is None:
                index.properties()[field_name] = _dynamic_mapping(value)
                continue
            if spec.get("type") == "dense_vector":
                if not isinstance(value, list) or len(value) != spec.get("dims", len(value)):
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

    def _remove_doc(self, index: _Index, doc_id: str) -> tuple[int, Json]:
        found = index.docs.pop(doc_id, None) is not None
        index.versions[doc_id] = index.versions.get(doc_id, 0) + 1
        return (200 if found else 404), {
            "_index": index.name,
            "_id": doc_id,
            "_version": index.versions[doc_id],
            "result": "deleted" if found else "not_found",
        }

    def _index_doc(
        self, name: str, doc_id: str, source: Json, params: dict[str, str]
    ) -> tuple[int, Json]:
        index = self._resolve_write(name)
        status, result = self._store_doc(index, doc_id, source, False)
        if params.get("refresh") in {"true", "", "wait_for"}:
            self._refresh([index.name])
        return status, result

    def _delete_doc(self, name: str, doc_id: str, params: dict[str, str]) -> tuple[int, Json]:
        index = self._resolve_write(name)
        status, result = self._remove_doc(index, doc_id)
        if params.get("refresh") in {"true", "", "wait_for"}:
            self._refresh([index.name])
        return status, result

    def _get_doc(self, name: str, doc_id: str, params: dict[str, str]) -> tuple[int, Json]:
        names = self._resolve_read(name)
        if len(names) > 1:
            raise _bad_request(
                f"alias [{name}] has more than one index associated with it [{names}], "
                "can't execute a single index op"
            )
        index = self._indices[names[0]]
        source = index.docs.get(doc_id)
        if source is None:
            return 404, {"_index": index.name, "_id": doc_id, "found": False}
        answer = {
            "_index": index.name,
            "_id": doc_id,
            "_version": index.versions[doc_id],
            "_seq_no": 0,
            "_primary_term": 1,
            "found": True,
        }
        spec = _source_spec_from_params(params)
        if spec is not False:
            answer["_source"] = _filter_source(source, spec, index)
        return 200, answer

    def _refresh(self, names: list[str]) -> Json:
        for name in names:
            index = self._indices[name]
            index.searchable = copy.deepcopy(index.docs)
        return {"_shards": {"total": len(names), "successful": len(names), "failed": 0}}

    # --- search ------------------------------------------------------------------------------

    def _count(self, name: str, body: Json) -> Json:
        query = body.get("query", {"match_all": {}})
        total = sum(
            1
            for index_name in self._resolve_read(name)
            for doc_id, source in self._indices[index_name].searchable.items()
            if _matches(query, doc_id, source)
        )
        return {"count": total, "_shards": _shards(1)}

    def _search(self, name: str, body: Json, params: dict[str, str]) -> Json:
        indices = [self._indices[n] for n in self._resolve_read(name)]
        size = int(body.get("size", params.get("size", 10)))
        start = int(body.get("from", params.get("from", 0)))
        knn = body.get("knn")
        if knn is not None:
            if "scroll" in params:
                raise _bad_request("[knn] cannot be used in a scroll context")
            scored = self._knn(indices, knn if isinstance(knn, list) else [knn], size)
            total = len(scored)
        else:
            query = body.get("query", {"match_all": {}})
            scored = [
                (index, doc_id, 1.0)
                for index in indices
                for doc_id, source in index.searchable.items()
                if _matches(query, doc_id, source)
            ]
            scored = _sorted(scored, body.get("sort"))
            total = len(scored)
        source_spec = body.get("_source", _source_spec_from_params(params))
        wanted_fields = [f if isinstance(f, str) else f["field"] for f in body.get("fields", [])]
        hits = [
            _hit(index, doc_id, score, source_spec, wanted_fields)
            for index, doc_id, score in scored
        ]
        answer: Json = {
            "took": 1,
            "timed_out": False,
            "_shards": _shards(len(indices)),
            "hits": {
                "total": total
                if params.get("rest_total_hits_as_int") == "true"
                else {"value": total, "relation": "eq"},
                "max_score": max((h["_score"] for h in hits), default=None),
                "hits": hits[start : start + size],
            },
        }
        if "scroll" in params:
            scroll_id = base64.b64encode(f"scroll-{next(self._scroll_ids)}".encode()).decode()
            self._scrolls[scroll_id] = (size, hits[start + size :])
            answer["_scroll_id"] = scroll_id
        return answer

    def _scroll(self, body: Json) -> Json:
        scroll_id = body.get("scroll_id", "")
        state = self._scrolls.get(scroll_id)
        if state is None:
            raise EsError(
                404,
                "search_context_missing_exception",
                f"No search context found for id [{scroll_id}]",
            )
        size, remaining = state
        page = remaining[:size]
        self._scrolls[scroll_id] = (size, remaining[size:])
        return {
            "_scroll_id": scroll_id,
            "took": 1,
            "timed_out": False,
            "_shards": _shards(1),
            "hits": {"total": {"value": len(page), "relation": "eq"}, "hits": page},
        }

    def _clear_scroll(self, body: Json) -> Json:
        freed = 0
        for scroll_id in _as_list(body.get("scroll_id")):
            if self._scrolls.pop(scroll_id, None) is not None:
                freed += 1
        return {"succeeded": True, "num_freed": freed}

    def _knn(
        self, indices: list[_Index], searches: list[Json], size: int
    ) -> list[tuple[_Index, str, float]]:
        combined: dict[tuple[str, str], tuple[_Index, float]] = {}
        for search in searches:
            for index, doc_id, score in self._one_knn(indices, search, size):
                key = (index.name, doc_id)
                previous = combined.get(key, (index, 0.0))[1]
                combined[key] = (index, previous + score)
        ranked = sorted(combined.items(), key=lambda item: -item[1][1])
        return [(index, key[1], score) for key, (index, score) in ranked]

    def _one_knn(
        self, indices: list[_Index], search: Json, size: int
    ) -> list[tuple[_Index, str, float]]:
        field_name = search.get("field")
        if not field_name:
            raise _bad_request("[knn] requires field [field]", "x_content_parse_exception")
        k = int(search.get("k", size))
        if k < 1:
            raise _bad_request("[k] must be greater than 0")
        num_candidates = int(search.get("num_candidates", min(round(1.5 * k), MAX_NUM_CANDIDATES)))
        if num_candidates > MAX_NUM_CANDIDATES:
            raise _bad_request(f"[num_candidates] cannot exceed [{MAX_NUM_CANDIDATES}]")
        if num_candidates < k:
            raise _bad_request("[num_candidates] cannot be less than [k]")
        query = self._query_vector(search)
        results: list[tuple[_Index, str, float]] = []
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
                raise _bad_request(
                    f"[knn] queries are only supported on [dense_vector] fields, field "
                    f"[{field_name}] is of type [{spec.get('type')}]"
                )
            dims = spec.get("dims")
            if len(query) != dims:
                raise _bad_request(
                    f"The query vector has a different number of dimensions [{len(query)}] "
                    f"than the document vectors [{dims}]."
                )
            similarity = spec.get("similarity", "cosine")
            if similarity == "cosine" and not np.any(query):
                raise _bad_request(
                    "The [cosine] similarity does not support vectors with zero magnitude."
                )
            filters = search.get("filter", [])
            for doc_id, source in index.searchable.items():
                vector = source.get(field_name)
                if vector is None or not all(
                    _matches(f, doc_id, source) for f in _as_list(filters)
                ):
                    continue
                results.append((index, doc_id, _similarity(similarity, query, vector)))
        results.sort(key=lambda item: -item[2])
        return results[:k]

    def _query_vector(self, search: Json) -> np.ndarray:
        has_vector = "query_vector" in search
        builder = search.get("query_vector_builder")
        if has_vector == (builder is not None):
            raise _bad_request(
                "either [query_vector] or [query_vector_builder] must be provided, but not both"
                if has_vector
                else "either [query_vector] or [query_vector_builder] must be provided"
            )
        if has_vector:
            return np.asarray(search["query_vector"], dtype=np.float64)
        spec = builder.get("text_embedding")
        if spec is None:
            raise _bad_request(f"unknown query vector builder [{next(iter(builder), '')}]")
        vectors = self._infer_with(spec.get("model_id", ""), [spec.get("model_text", "")])
        return np.asarray(vectors[0], dtype=np.float64)

    # --- machine learning ----------------------------------------------------------------------

    def _ml(self, model_id: str, rest: list[str], body: Json) -> tuple[int, Json]:
        if rest[-1] == "_stats":
            return 200, self._model_stats(model_id)
        if rest[-1] == "_infer":
            texts = [doc.get("text_field", "") for doc in body.get("docs", [])]
            vectors = self._infer_with(model_id, texts)
            return 200, {"inference_results": [{"predicted_value": list(v)} for v in vectors]}
        raise _bad_request(f"no handler found for uri [/_ml/trained_models/{model_id}/...]")

    def _model_stats(self, model_id: str) -> Json:
        model = self._models.get(model_id)
        if model is None:
            raise EsError(
                404,
                "resource_not_found_exception",
                f"No known trained model with model_id [{model_id}]",
            )
        stats: Json = {
            "model_id": model_id,
            "model_size_stats": {"model_size_bytes": 0, "required_native_memory_bytes": 0},
            "pipeline_count": 0,
            "inference_stats": {"failure_count": 0, "inference_count": 0, "cache_miss_count": 0},
        }
        if model.state is not None:
            stats["deployment_stats"] = {
                "deployment_id": model_id,
                "model_id": model_id,
                "state": model.state,
                "allocation_status": {
                    "allocation_count": 1 if model.state == "started" else 0,
                    "target_allocation_count": 1,
                    "state": "fully_allocated" if model.state == "started" else "starting",
                },
                "nodes": [],
            }
        return {"count": 1, "trained_model_stats": [stats]}

    def _infer_with(self, model_id: str, texts: list[str]) -> list[list[float]]:
        model = self._models.get(model_id)
        if model is None:
            raise EsError(
                404, "resource_not_found_exception", f"Could not find trained model [{model_id}]"
            )
        if model.state != "started" or model.encode is None:
            raise EsError(409, "status_exception", f"Trained model [{model_id}] is not deployed")
        return [list(map(float, v)) for v in model.encode(texts)]


# --- helpers -------------------------------------------------------------------------------


def _json(body: bytes) -> Json:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise _bad_request(f"Failed to parse request body: {exc}", "parse_exception") from None
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _shards(count: int) -> Json:
    return {"total": count, "successful": count, "skipped": 0, "failed": 0}


def _nested_settings(body: Json) -> Json:
    settings = body.get("settings", {})
    flat: Json = {}
    for key, value in settings.get("index", settings).items():
        flat[key.removeprefix("index.")] = str(value).lower() if isinstance(value, bool) else value
    return {"index": flat}


def _check_field_mapping(name: str, spec: Json) -> None:
    kind = spec.get("type")
    if kind is None and "properties" in spec:
        return
    if kind not in {
        "dense_vector",
        "keyword",
        "date",
        "geo_point",
        "long",
        "double",
        "float",
        "integer",
        "text",
        "boolean",
        "object",
    }:
        raise EsError(
            400,
            "mapper_parsing_exception",
            f"No handler for type [{kind}] declared on field [{name}]",
        )
    if kind != "dense_vector":
        return
    dims = spec.get("dims")
    if dims is not None and not 1 <= int(dims) <= MAX_DIMS:
        raise EsError(
            400,
            "mapper_parsing_exception",
            f"The number of dimensions should be in the range [1, {MAX_DIMS}] but was [{dims}]",
        )
    similarity = spec.get("similarity", "cosine")
    if similarity not in SIMILARITIES:
        raise EsError(
            400, "mapper_parsing_exception", f"Unknown value [{similarity}] for field [similarity]"
        )
    options = spec.get("index_options")
    if options is not None:
        if options.get("type") not in INDEX_TYPES:
            raise EsError(
                400,
                "mapper_parsing_exception",
                f"Unknown vector index options type [{options.get('type')}] for field [{name}]",
            )
        for key in ("m", "ef_construction"):
            if key in options and int(options[key]) < 1:
                raise EsError(400, "mapper_parsing_exception", f"[{key}] must be greater than 0")


def _dynamic_mapping(value: Any) -> Json:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if (
        isinstance(value, list)
        and 128 <= len(value) <= MAX_DIMS
        and all(isinstance(v, float) for v in value)
    ):
        return {"type": "dense_vector", "dims": len(value), "similarity": "cosine", "index": True}
    if isinstance(value, list):
        return _dynamic_mapping(value[0]) if value else {"type": "keyword"}
    if isinstance(value, dict):
        return {"properties": {k: _dynamic_mapping(v) for k, v in value.items()}}
    return {"type": "keyword"}


def _similarity(similarity: str, query: np.ndarray, vector: Sequence[float]) -> float:
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


def _value(source: Json, path: str) -> Any:
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _field_and_value(spec: Json) -> tuple[str, Any]:
    (field_name, value), *_ = spec.items()
    if isinstance(value, dict):
        value = value.get("value")
    return field_name, value


def _matches(query: Json | list, doc_id: str, source: Json) -> bool:
    if isinstance(query, list):
        return all(_matches(q, doc_id, source) for q in query)
    if not query:
        return True
    (kind, spec), *_ = query.items()
    if kind == "match_all":
        return True
    if kind == "ids":
        return doc_id in spec.get("values", [])
    if kind == "exists":
        return _value(source, spec["field"]) is not None
    if kind in {"term", "terms", "prefix"}:
        field_name, wanted = _field_and_value(spec)
        actual = doc_id if field_name == "_id" else _value(source, field_name)
        values = [str(v) for v in _as_list(actual)]
        if kind == "term":
            return str(wanted) in values
        if kind == "terms":
            return any(str(w) in values for w in wanted)
        return any(v.startswith(str(wanted)) for v in values)
    if kind == "bool":
        musts = _as_list(spec.get("must")) + _as_list(spec.get("filter"))
        shoulds = _as_list(spec.get("should"))
        default_min = 0 if musts else 1
        minimum = int(spec.get("minimum_should_match", default_min if shoulds else 0))
        return (
            all(_matches(q, doc_id, source) for q in musts)
            and not any(_matches(q, doc_id, source) for q in _as_list(spec.get("must_not")))
            and sum(_matches(q, doc_id, source) for q in shoulds) >= minimum
        )
    raise _bad_request(f"unknown query [{kind}]", "parsing_exception")


def _sorted(scored: list[tuple[_Index, str, float]], sort: Any) -> list[tuple[_Index, str, float]]:
    """Sort by field values (missing ones last); `_doc` and `_score` keep the stored order."""
    for spec in reversed(_as_list(sort)):
        name, order = (spec, "asc") if isinstance(spec, str) else next(iter(spec.items()))
        if isinstance(order, dict):
            order = order.get("order", "asc")
        if name in {"_doc", "_score"}:
            continue
        present = [s for s in scored if _value(s[0].searchable[s[1]], name) is not None]
        missing = [s for s in scored if _value(s[0].searchable[s[1]], name) is None]
        present.sort(
            key=lambda s, n=name: _value(s[0].searchable[s[1]], n), reverse=order == "desc"
        )
        scored = present + missing
    return scored


def _source_spec_from_params(params: dict[str, str]) -> Any:
    if params.get("_source") in {"false", "true"}:
        return params["_source"] == "true"
    spec: Json = {}
    if "_source_includes" in params or "_source" in params:
        spec["includes"] = (params.get("_source_includes") or params["_source"]).split(",")
    if "_source_excludes" in params:
        spec["excludes"] = params["_source_excludes"].split(",")
    if "_source_exclude_vectors" in params:
        spec["exclude_vectors"] = params["_source_exclude_vectors"] == "true"
    return spec or True


def _filter_source(source: Json, spec: Any, index: _Index) -> Json:
    if spec is True or spec is None:
        spec = {}
    if isinstance(spec, str):
        spec = {"includes": [spec]}
    if isinstance(spec, list):
        spec = {"includes": spec}
    includes = _as_list(spec.get("includes") or spec.get("include"))
    excludes = _as_list(spec.get("excludes") or spec.get("exclude"))
    exclude_vectors = spec.get("exclude_vectors", index.excludes_vectors())
    result = {}
    for key, value in source.items():
        if includes and not any(fnmatch.fnmatchcase(key, p) for p in includes):
            continue
        if any(fnmatch.fnmatchcase(key, p) for p in excludes):
            continue
        explicitly_included = key in includes
        if key in index.vector_fields() and exclude_vectors and not explicitly_included:
            continue
        result[key] = copy.deepcopy(value)
    return result


def _hit(index: _Index, doc_id: str, score: float, source_spec: Any, fields: list[str]) -> Json:
    source = index.searchable[doc_id]
    hit: Json = {"_index": index.name, "_id": doc_id, "_score": score}
    if source_spec is not False:
        hit["_source"] = _filter_source(source, source_spec, index)
    if fields:
        found = {}
        for pattern in fields:
            for key, value in source.items():
                if fnmatch.fnmatchcase(key, pattern) and value is not None:
                    found[key] = copy.deepcopy(value) if isinstance(value, list) else [value]
        if found:
            hit["fields"] = found
    return hit


def _handler_for(emulator: ElasticsearchEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            emulator._track(self.connection, True)

        def finish(self) -> None:
            emulator._track(self.connection, False)
            super().finish()

        def log_message(self, *_: object) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = emulator.handle(self.command, self.path, headers, body)
            if not status or not emulator.running:
                self.close_connection = True
                return
            data = b"" if payload is None else json.dumps(payload).encode("utf-8")
            accept = headers.get("accept", "")
            if "compatible-with=" in accept:
                version = accept.split("compatible-with=")[1].split(";")[0].strip()
                content_type = f"application/vnd.elasticsearch+json;compatible-with={version}"
            else:
                content_type = "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    return Handler
