"""Per-shard progress of `findimage index --shard K/N`: one small document per shard, in an
index of findimage's own beside the alias (`<alias>-shards`).

Why a separate index and not the new index's `_meta`: N workers report at once, and a mapping
update replaces `_meta` whole
(https://www.elastic.co/guide/en/elasticsearch/reference/8.11/mapping-meta-field.html), so
two workers would overwrite each other's reports. Each worker writes only its own document,
and a single-document write is atomic
(https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-index). Documents in
the searched index would be counted and found by searches. The progress index carries
findimage's `_meta` mark and a name findimage gives no vector index (indices.py), so it is
never taken for a leftover of a rebuild, and never deleted by one.

A document says which index the shard writes (the alias, or a rebuild's new index), K and N,
the models, how many pictures the shard has written in its current run, and whether that run
finished. Writes refresh the small index at once (`refresh=true`), so `findimage status` and
`--swap` read them with a search; a worker writes at most one every few seconds.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from elasticsearch import BadRequestError
from elasticsearch import NotFoundError as EsNotFoundError

from findimage.documents import ShardReport
from findimage.stores.elasticsearch.connection import Connection, error_type, translate_errors
from findimage.stores.elasticsearch.mapping import (
    META_KEY,
    has_findimage_mark,
    not_created_by_findimage,
)

log = logging.getLogger(__name__)

PROGRESS_SUFFIX = "shards"
# How often a running worker updates its document, at most.
REPORT_EVERY_SECONDS = 2.0
# More shards than anyone runs at once; a search for one index's reports reads them all.
MAX_REPORTS = 10_000

_MAPPINGS: dict[str, Any] = {
    "_meta": {META_KEY: {"kind": "shard progress"}},
    "properties": {
        "index": {"type": "keyword"},
        "shard": {"type": "integer"},
        "shards": {"type": "integer"},
        "image_model": {"type": "keyword"},
        "text_model": {"type": "keyword"},
        "written": {"type": "long"},
        "done": {"type": "boolean"},
        "started_at": {"type": "date"},
        "updated_at": {"type": "date"},
    },
}


def progress_index(alias: str) -> str:
    return f"{alias}-{PROGRESS_SUFFIX}"


class ShardProgressDocument:
    """The progress document of shard `shard` of `shards` writing into `index`, kept by the
    worker as it runs (indexer/shards.py's ShardProgress)."""

    def __init__(
        self,
        connection: Connection,
        alias: str,
        index: str,
        shard: int,
        shards: int,
        models: tuple[str, str],
    ):
        self._connection = connection
        self._alias = alias
        self._source: dict[str, Any] = {
            "index": index,
            "shard": shard,
            "shards": shards,
            "image_model": models[0],
            "text_model": models[1],
            "written": 0,
            "done": False,
        }
        self._id = f"{index}:{shard}of{shards}"
        self._last_report = 0.0

    def started(self) -> None:
        ensure_progress_index(self._connection, self._alias)
        self._source["started_at"] = _now()
        self._source.update(written=0, done=False)
        self._report()

    def wrote(self, count: int) -> None:
        self._source["written"] += count
        if time.monotonic() - self._last_report >= REPORT_EVERY_SECONDS:
            self._report()

    def finished(self) -> None:
        self._source["done"] = True
        self._report()

    def _report(self) -> None:
        self._source["updated_at"] = _now()
        with translate_errors(self._connection, "record this shard's progress"):
            self._connection.client.index(
                index=progress_index(self._alias),
                id=self._id,
                document=self._source,
                refresh=True,
            )
        self._last_report = time.monotonic()


def ensure_progress_index(connection: Connection, alias: str) -> None:
    """Create the progress index once; refuse one of the same name that findimage did not
    make (a write would change another tool's data)."""
    name = progress_index(alias)
    client = connection.client
    with translate_errors(connection, f"create the index {name}"):
        try:
            found = client.indices.get_mapping(index=name).body
        except EsNotFoundError:
            found = None
        if found is not None:
            _check_ours(name, found)
            return
        try:
            client.indices.create(index=name, mappings=_MAPPINGS)
        except BadRequestError as exc:
            if error_type(exc) != "resource_already_exists_exception":
                raise
            log.info("the index %s was created by another worker", name)


def shard_reports(connection: Connection, alias: str, indices: list[str]) -> list[ShardReport]:
    """The shards' latest reports for runs into `indices`, sorted by index and shard; for
    each index, only those of the number of shards reported most recently."""
    name = progress_index(alias)
    if not indices:
        return []
    with translate_errors(connection, f"read {name}"):
        try:
            _check_ours(name, connection.client.indices.get_mapping(index=name).body)
            response = connection.client.search(
                index=name,
                query={"terms": {"index": indices}},
                size=MAX_REPORTS,
            )
        except EsNotFoundError:
            return []
    reports = [_report(hit["_source"]) for hit in response["hits"]["hits"]]
    return sorted(reports, key=lambda r: (r.index, r.shards, r.shard))


def latest_run(reports: list[ShardReport]) -> list[ShardReport]:
    """Of one index's reports, those of the N its most recent report was made with."""
    if not reports:
        return []
    newest = max(reports, key=lambda r: r.updated_at)
    return [r for r in reports if r.shards == newest.shards]


def _check_ours(name: str, found: dict[str, Any]) -> None:
    for body in found.values():
        if not has_findimage_mark(body.get("mappings", {})):
            raise not_created_by_findimage(name)


def _report(source: dict[str, Any]) -> ShardReport:
    return ShardReport(
        index=str(source["index"]),
        shard=int(source["shard"]),
        shards=int(source["shards"]),
        image_model=str(source.get("image_model", "")),
        text_model=str(source.get("text_model", "")),
        written=int(source.get("written", 0)),
        done=bool(source.get("done", False)),
        updated_at=datetime.fromisoformat(str(source["updated_at"])),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
