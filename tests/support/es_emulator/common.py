"""What every part of the emulator shares: errors shaped as Elasticsearch shapes them, the
index state, the version being emulated, and small JSON helpers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

# The versions the tests run against. 8.19 is the last 8.x minor; 9.1 still returns vectors
# in _source, 9.2 leaves them out by default (see `_Index.excludes_vectors`).
ES_8 = "8.19.3"
ES_9_1 = "9.1.4"
ES_9 = "9.2.0"
VERSIONS = (ES_8, ES_9_1, ES_9)


def version_tuple(number: str) -> tuple[int, int]:
    major, minor, *_ = number.split(".")
    return int(major), int(minor)


class EsError(Exception):
    """An error answer, shaped as Elasticsearch shapes them: the cause, repeated in root_cause.

    https://www.elastic.co/docs/reference/elasticsearch/rest-apis/api-conventions (error
    responses), and every `catch:` in the REST YAML tests of elastic/elasticsearch.
    """

    def __init__(
        self, status: int, error_type: str, reason: str, caused_by: Json | None = None, **extra: Any
    ):
        super().__init__(reason)
        self.status = status
        cause = {"type": error_type, "reason": reason, **extra}
        error: Json = {"root_cause": [cause], **cause}
        if caused_by is not None:
            error["caused_by"] = caused_by
        self.body: Json = {"error": error, "status": status}


def index_not_found(name: str) -> EsError:
    # The shape of IndexNotFoundException, as indices.get/10_basic.yml and search tests catch it.
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        **{"resource.type": "index_or_alias", "resource.id": name},
        index_uuid="_na_",
        index=name,
    )


def bad_request(reason: str, error_type: str = "illegal_argument_exception") -> EsError:
    return EsError(400, error_type, reason)


@dataclass
class Index:
    name: str
    mappings: Json
    settings: Json
    version: tuple[int, int]
    aliases: dict[str, Json] = field(default_factory=dict)
    docs: dict[str, Json] = field(default_factory=dict)
    searchable: dict[str, Json] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    # Each document's _seq_no: one counter for the index's one shard, raised by every write
    # and delete (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/
    # optimistic-concurrency-control). The primary term stays 1: no shard ever fails over.
    seq_nos: dict[str, int] = field(default_factory=dict)
    next_seq_no: int = 0

    def properties(self) -> Json:
        return self.mappings.setdefault("properties", {})

    def vector_fields(self) -> set[str]:
        return {
            name for name, spec in self.properties().items() if spec.get("type") == "dense_vector"
        }

    def date_fields(self) -> set[str]:
        return {name for name, spec in self.properties().items() if spec.get("type") == "date"}

    def excludes_vectors(self) -> bool:
        """Vectors are left out of _source by default from 9.2 on, and kept before.

        `index.mapping.exclude_source_vectors` arrived in 9.2 with default true; 8.x, 9.0 and
        9.1 return vectors in _source (https://www.elastic.co/docs/reference/elasticsearch/
        mapping-reference/dense-vector, "applies to: stack ga 9.2"; the setting's code is in
        elastic/elasticsearch#135954's ShardGetService).
        """
        if self.version < (9, 2):
            return False
        value = self.settings["index"].get("mapping.exclude_source_vectors", "true")
        return str(value).lower() == "true"


class EmulatorState:
    """The state the request handlers share; all of it is read and changed under `_lock`."""

    version: str
    _lock: threading.RLock
    _indices: dict[str, Index]

    def _version(self) -> tuple[int, int]:
        return version_tuple(self.version)


def parse_json(body: bytes) -> Json:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise bad_request(f"Failed to parse request body: {exc}", "parse_exception") from None
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def shards(count: int) -> Json:
    return {"total": count, "successful": count, "skipped": 0, "failed": 0}


def field_value(source: Json, path: str) -> Any:
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
