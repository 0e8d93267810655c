"""Which Elasticsearch versions findimage works with, and a client that speaks each one's API.

The `elasticsearch` 9.x client marks every request `compatible-with=9`, which 8.x clusters
refuse with `media_type_header_exception` (elastic/elasticsearch-py#2923). Elasticsearch
accepts its own major and the one before it (REST API compatibility:
https://www.elastic.co/guide/en/elasticsearch/reference/current/rest-api-compatibility.html),
so `VersionedElasticsearch` asks the cluster its version once, with plain `application/json`
that every version accepts, and then marks each request with the cluster's own major.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch import __versionstr__ as client_version

from findimage.errors import ConfigError

CLIENT_MAJOR = int(client_version.partition(".")[0])

Version = tuple[int, int]

# The first version with each feature findimage uses, from Elastic's docs and release notes:
# top-level `knn` in _search: 8.4
#   https://www.elastic.co/guide/en/elasticsearch/reference/8.4/knn-search.html
# `query_vector_builder` (text embedded inside the search): 8.7
#   https://www.elastic.co/guide/en/elasticsearch/reference/8.7/knn-search.html
# `int8_hnsw`: 8.12 https://www.elastic.co/guide/en/elasticsearch/reference/8.12/release-highlights.html
# `bbq_hnsw`: 8.16 (elastic/elasticsearch#114439, released in 8.16)
BASE_VERSION: Version = (8, 7)
INDEX_TYPE_VERSIONS: dict[str, Version] = {
    "hnsw": BASE_VERSION,
    "int8_hnsw": (8, 12),
    "bbq_hnsw": (8, 16),
}

_COMPAT = re.compile(r"application/(json|x-ndjson)")


def oldest_supported(index_type: str) -> Version:
    return max(BASE_VERSION, INDEX_TYPE_VERSIONS.get(index_type, BASE_VERSION))


def parse_version(number: str) -> Version | None:
    match = re.match(r"(\d+)\.(\d+)", number)
    return (int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class ClusterInfo:
    number: str
    version: Version


class VersionedElasticsearch(Elasticsearch):
    """The 9.x client, sending the compatibility headers of the cluster's own major.

    `api_major` is set once, by `ensure_version`; clients made by `options()` (the helpers
    make one per call) share it.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._api_state: dict[str, Any] = {"major": None, "info": None}
        self._api_lock = threading.Lock()

    def options(self, *args: Any, **kwargs: Any) -> VersionedElasticsearch:
        client = super().options(*args, **kwargs)
        client._api_state = self._api_state
        client._api_lock = self._api_lock
        return client

    @property
    def cluster_info(self) -> ClusterInfo | None:
        return self._api_state["info"]

    def perform_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any | None = None,
        endpoint_id: str | None = None,
        path_parts: Mapping[str, Any] | None = None,
    ) -> Any:
        major = self._api_state["major"]
        if headers and major is not None and major != CLIENT_MAJOR:
            # Already in the vnd form, the base client leaves these headers alone.
            wanted = f"application/vnd.elasticsearch+\\1; compatible-with={major}"
            headers = {name: _COMPAT.sub(wanted, value) for name, value in headers.items()}
        return super().perform_request(
            method,
            path,
            params=params,
            headers=headers,
            body=body,
            endpoint_id=endpoint_id,
            path_parts=path_parts,
        )

    def ensure_version(self, location: str, oldest: Version) -> None:
        """Ask the cluster its version (once), refuse one that is too old, pick the headers."""
        if self._api_state["major"] is not None:
            return
        with self._api_lock:
            if self._api_state["major"] is not None:
                return
            info = self._read_version(location)
            if info.version < oldest:
                raise ConfigError(
                    f"Elasticsearch at {location} is version {info.number}, but findimage "
                    f"needs {oldest[0]}.{oldest[1]} or later: upgrade the cluster."
                )
            self._api_state["info"] = info
            self._api_state["major"] = min(info.version[0], CLIENT_MAJOR)

    def _read_version(self, location: str) -> ClusterInfo:
        # GET / with plain JSON: the one request every Elasticsearch version answers the same
        # way (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-info).
        from elastic_transport import SerializationError

        headers = {**self._headers, "accept": "application/json"}
        try:
            # The transport called directly takes none of the client's options by itself:
            # the configured timeout and retries are passed as the client passes them.
            meta, body = self.transport.perform_request(
                "GET",
                "/",
                headers=headers,
                request_timeout=self._request_timeout,
                max_retries=self._max_retries,
                retry_on_timeout=self._retry_on_timeout,
            )
        except SerializationError:
            raise ConfigError(
                f"{location} is not Elasticsearch (it does not answer GET / with JSON): "
                "check FINDIMAGE_ES_URL."
            ) from None
        if meta.status == 401:
            raise ConfigError(
                f"Elasticsearch at {location} refused the credentials: check "
                "FINDIMAGE_ES_API_KEY, or FINDIMAGE_ES_USER and FINDIMAGE_ES_PASSWORD."
            )
        if meta.status == 403:
            raise ConfigError(
                f"The Elasticsearch user may not read the cluster's version at {location}: "
                "grant it the monitor cluster privilege (see docs/elasticsearch.md)."
            )
        version = body.get("version", {}) if isinstance(body, dict) else {}
        if version.get("distribution") == "opensearch":
            raise ConfigError(
                f"{location} is OpenSearch {version.get('number')}, not Elasticsearch: "
                "check FINDIMAGE_ES_URL."
            )
        number = str(version.get("number", ""))
        parsed = parse_version(number)
        product = meta.headers.get("x-elastic-product")
        if meta.status != 200 or parsed is None or (parsed[0] >= 8 and not product):
            raise ConfigError(
                f"{location} is not Elasticsearch (it answered HTTP {meta.status} to GET /): "
                "check FINDIMAGE_ES_URL."
            )
        return ClusterInfo(number=number, version=parsed)
