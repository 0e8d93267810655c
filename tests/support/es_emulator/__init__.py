"""An in-process Elasticsearch stand-in for the tests, spoken to over HTTP by the real client.

It implements only the REST calls findimage makes, and answers them the way Elasticsearch
documents them and its REST YAML tests (rest-api-spec/src/yamlRestTest in
elastic/elasticsearch) check; each behavior names its source beside it. It emulates one
version at a time (`version=`): 8.x and 9.x differ in the compatibility headers they accept
and in whether vectors come back in `_source`.

Parts: `indices` (indices, mappings, settings, aliases), `documents` (bulk, get, mget,
refresh, reindex), `search` (queries, kNN, sorting, scrolls), `ml` (trained models).

Hooks for the failure tests: `reject_bulk_items` (429 on the next bulk items),
`refuse_documents` (an error for chosen documents, every time), `stop` and `start` (an
outage on the same port), `stall` (a server that accepts but never answers),
`before_request` (to act at a chosen request, or drop it unanswered). `requests` records
every request served.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.es_emulator.common import (
    ES_8,
    ES_9,
    ES_9_1,
    VERSIONS,
    EsError,
    Index,
    Json,
    bad_request,
    parse_json,
)
from tests.support.es_emulator.documents import DocumentsMixin
from tests.support.es_emulator.indices import IndicesMixin
from tests.support.es_emulator.ml import Encode, MlMixin, TrainedModel
from tests.support.es_emulator.search import SearchMixin

__all__ = ["ES_8", "ES_9", "ES_9_1", "VERSIONS", "ElasticsearchEmulator", "RecordedRequest"]

STALL_LIMIT_SECONDS = 60.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ElasticsearchEmulator(IndicesMixin, DocumentsMixin, SearchMixin, MlMixin):
    def __init__(
        self,
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        version: str = ES_9,
    ):
        self.version = version
        self._api_key = api_key
        self._basic = basic_auth
        self._ssl_context = ssl_context
        self._lock = threading.RLock()
        self._indices = {}
        self._models: dict[str, TrainedModel] = {}
        self._scrolls = {}
        self._scroll_ids = itertools.count(1)
        self._rejections = []
        self._refused = (set(), 400)
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
        # A client speaking TLS to the plain server (a test of that) is not worth a traceback.
        server.handle_error = lambda *_: None  # type: ignore[method-assign]
        if self._ssl_context is not None:
            server.socket = self._ssl_context.wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]
        self._server = server
        self._release.clear()
        # `shutdown()` waits for the loop's next poll: 0.5 s by default, at every test's end.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
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

    def deploy_model(self, model_id: str, encode: Encode | None, state: str | None = "started"):
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

    def index_names(self, hidden: bool = False) -> list[str]:
        """The indices, as `GET _all` or `*` lists them: hidden ones (`index.hidden`, such as
        findimage's writer leases) only when asked, as expand_wildcards leaves them out by
        default (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/
        api-conventions, "Hidden data streams and indices")."""
        with self._lock:
            return sorted(name for name, index in self._indices.items() if hidden or _shown(index))

    def aliases(self) -> dict[str, list[str]]:
        with self._lock:
            result: dict[str, list[str]] = {}
            for index in self._indices.values():
                for alias in index.aliases:
                    result.setdefault(alias, []).append(index.name)
            return {alias: sorted(names) for alias, names in result.items()}

    def stored_paths(self) -> list[str]:
        """The `path` of every document in every index (hidden ones left out, as
        `index_names` does), refreshed or not: what a test sees from outside, not an API of
        Elasticsearch's."""
        with self._lock:
            return [
                doc["path"]
                for index in self._indices.values()
                if _shown(index)
                for doc in index.docs.values()
            ]

    def document_ids(self, name: str) -> list[str]:
        """The ids of the documents in the concrete index `name`, refreshed or not: what a
        test sees from outside, not an API of Elasticsearch's."""
        with self._lock:
            return sorted(self._indices[name].docs)

    def mapping(self, name: str) -> Json:
        with self._lock:
            return copy.deepcopy(self._resolve_one(name).mappings)

    def settings(self, name: str) -> Json:
        with self._lock:
            return copy.deepcopy(self._resolve_one(name).settings["index"])

    def calls(self, method: str, suffix: str) -> list[RecordedRequest]:
        """The recorded requests of one method whose path ends with `suffix`."""
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

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
        # Every answer, errors included, carries the product header (since 7.14; the client's
        # product check: https://www.elastic.co/docs/reference/elasticsearch/clients/python).
        reply_headers = {"X-Elastic-Product": "Elasticsearch"}
        try:
            self._check_media_type(headers)
            self._authenticate(headers)
            status, payload = self._route(method, path, params, body)
        except EsError as error:
            status, payload = error.status, error.body
            if status == 401:
                reply_headers["WWW-Authenticate"] = 'ApiKey, Basic realm="security"'
        return status, payload, reply_headers

    def _check_media_type(self, headers: dict[str, str]) -> None:
        """REST API compatibility: a cluster accepts `compatible-with` its own major and the
        one before (https://www.elastic.co/guide/en/elasticsearch/reference/current/
        rest-api-compatibility.html). An 8.x cluster answers the 9.x client's
        `compatible-with=9` with this 400, quoted in elastic/elasticsearch-py#2923 and
        elastic/elasticsearch-ruby#2665 ("Accept version must be either version 8 or 7, but
        found 9"); Accept and Content-Type must then agree."""
        major = self._version()[0]
        accepted = {str(major), str(major - 1)}
        asked = {}
        for name, label in (("accept", "Accept"), ("content-type", "Content-Type")):
            value = headers.get(name, "")
            if "compatible-with=" in value:
                asked[label] = (value, value.split("compatible-with=")[1].split(";")[0].strip())
        if not asked:
            return
        listed = ", ".join(asked)
        for label, (value, version) in asked.items():
            if version not in accepted:
                raise EsError(
                    400,
                    "media_type_header_exception",
                    f"Invalid media-type value on headers [{listed}]",
                    caused_by={
                        "type": "status_exception",
                        "reason": f"{label} version must be either version {major} or "
                        f"{major - 1}, but found {version}. {label}={value}",
                    },
                )
        if len({version for _, version in asked.values()}) > 1:
            raise EsError(
                400,
                "media_type_header_exception",
                f"Invalid media-type value on headers [{listed}]",
                caused_by={
                    "type": "status_exception",
                    "reason": "A compatible version is required on both Content-Type and Accept "
                    "headers if either one has requested a compatible version and the "
                    "compatible versions must match.",
                },
            )

    def _authenticate(self, headers: dict[str, str]) -> None:
        """API key or basic auth; 401 security_exception with these reasons
        (https://www.elastic.co/docs/deploy-manage/users-roles/cluster-or-deployment-auth)."""
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
        self, method: str, path: list[str], params: dict[str, str], body: bytes
    ) -> tuple[int, Json | None]:
        with self._lock:
            if not path:
                return 200, self._info()
            if path[0] == "_bulk":
                return 200, self._bulk(None, body, params)
            if path[0] == "_aliases":
                return self._update_aliases(parse_json(body))
            if path[0] == "_alias":
                return self._get_alias(None, path[1] if len(path) > 1 else None, method)
            if path[0] == "_refresh":
                return 200, self._refresh(list(self._indices))
            if path[0] == "_mget":
                return 200, self._mget(None, parse_json(body), params)
            if path[0] == "_reindex":
                return 200, self._reindex(parse_json(body), params)
            if path[:2] == ["_search", "scroll"]:
                if method == "DELETE":
                    return 200, self._clear_scroll(parse_json(body))
                return 200, self._scroll(parse_json(body))
            if path[0] == "_ml" and len(path) >= 4 and path[1] == "trained_models":
                return self._ml(path[2], path[3:], parse_json(body))
            if path[0].startswith("_") and not (method == "PUT" and len(path) == 1):
                # Unknown endpoints; but `PUT /_name` reaches index creation (the {index}
                # route), which refuses the name.
                raise bad_request(f"no handler found for uri [/{'/'.join(path)}]")
            return self._route_index(method, path, params, body)

    def _route_index(
        self, method: str, path: list[str], params: dict[str, str], body: bytes
    ) -> tuple[int, Json | None]:
        name = path[0]
        if len(path) == 1:
            if method == "HEAD":
                return (200 if self._exists(name) else 404), None
            if method == "PUT":
                return 200, self._create(name, parse_json(body))
            if method == "DELETE":
                return 200, self._delete_index(name)
            if method == "GET":
                return 200, self._get_index(name)
        action = path[1]
        if action == "_mapping":
            if method in {"PUT", "POST"}:
                return 200, self._put_mapping(name, parse_json(body))
            return 200, self._get_mapping(name)
        if action == "_settings":
            if method == "PUT":
                return 200, self._put_settings(name, parse_json(body))
            return 200, self._get_settings(name)
        if action == "_alias":
            return self._get_alias(name, path[2] if len(path) > 2 else None, method)
        if action == "_bulk":
            return 200, self._bulk(name, body, params)
        if action == "_mget":
            return 200, self._mget(name, parse_json(body), params)
        if action == "_doc" and len(path) == 3:
            if method == "GET":
                return self._get_doc(name, path[2], params)
            if method == "HEAD":
                # Whether a document exists: 200 or 404, no body
                # (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-exists).
                return self._get_doc(name, path[2], params)[0], None
            if method in {"PUT", "POST"}:
                return self._index_doc(name, path[2], parse_json(body), params)
            if method == "DELETE":
                return self._delete_doc(name, path[2], params)
        if action == "_create" and len(path) == 3 and method in {"PUT", "POST"}:
            # PUT /<index>/_create/<id>: index only if absent, else 409
            # (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-create).
            return self._index_doc(name, path[2], parse_json(body), params, create_only=True)
        if action == "_count":
            return 200, self._count(name, parse_json(body))
        if action == "_search":
            return 200, self._search(name, parse_json(body), params)
        if action == "_refresh":
            return 200, self._refresh(self._resolve_read(name))
        raise bad_request(f"no handler found for uri [/{'/'.join(path)}] and method [{method}]")

    def _info(self) -> Json:
        """GET / (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-info);
        the wire compatibility versions are those the real releases report."""
        major = self._version()[0]
        return {
            "name": "emulator",
            "cluster_name": "findimage-tests",
            "cluster_uuid": "emulated",
            "version": {
                "number": self.version,
                "build_flavor": "default",
                "minimum_wire_compatibility_version": "8.19.0" if major >= 9 else "7.17.0",
                "minimum_index_compatibility_version": "8.0.0" if major >= 9 else "7.0.0",
            },
            "tagline": "You Know, for Search",
        }


def _shown(index: Index) -> bool:
    """Not a hidden index (`index.hidden`), which wildcards leave out by default."""
    return str(index.settings["index"].get("hidden", "false")).lower() != "true"


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
            # The answer's media type follows Accept: the compatible type when one was asked.
            accept = headers.get("accept", "")
            if "compatible-with=" in accept and status < 400:
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
