"""The Elasticsearch store: documents and vectors in one index behind an alias, kNN by `knn`.

Reads and writes go through the alias (FINDIMAGE_ES_INDEX), so `rebuilding` can fill a new
concrete index while searches keep using the old one, then move the alias in one atomic
`update_aliases` call. Every write is refreshed before it returns, so a search sees what
was committed before it started, as the VectorStore contract says.
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
from elastic_transport import TransportError
from elasticsearch import ApiError, BadRequestError, helpers
from elasticsearch import NotFoundError as EsNotFoundError

from bot.documents import (
    Fingerprint,
    ImageDocument,
    ModelInfo,
    SearchHit,
    StoreStatus,
    WriteFailure,
)
from bot.errors import BackendUnavailableError, ModelMismatchError
from bot.settings import Settings
from bot.stores.base import VectorStore, check_models
from bot.stores.es_connection import (
    Connection,
    connect,
    error_reason,
    error_type,
    item_error,
    translate_errors,
)
from bot.stores.es_mapping import (
    DOCUMENT_FIELDS,
    FINGERPRINT_FIELDS,
    META_KEY,
    VECTOR_FIELD,
    VectorIndexOptions,
    folder_filter,
    index_mappings,
    read_models,
    to_document,
    to_source,
)

log = logging.getLogger(__name__)

MAX_NUM_CANDIDATES = 10_000
BULK_CHUNK_SIZE = 500
SCAN_PAGE_SIZE = 1000
_INDEX_NOT_FOUND = "index_not_found_exception"


class ElasticsearchStore(VectorStore):
    location_setting = "FINDIMAGE_ES_INDEX"

    def __init__(
        self,
        connection: Connection,
        alias: str,
        index_options: VectorIndexOptions,
        num_candidates_factor: int = 10,
        bulk_retries: int = 3,
        bulk_backoff_seconds: float = 1.0,
        target: str | None = None,
    ):
        """`target` is where reads and writes go: the alias, or the new index of a rebuild."""
        self._connection = connection
        self._client = connection.client
        self._alias = alias
        self._target = target or alias
        self._index_options = index_options
        self._num_candidates_factor = num_candidates_factor
        self._bulk_retries = bulk_retries
        self._bulk_backoff = bulk_backoff_seconds
        self._models: ModelInfo | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ElasticsearchStore:
        return cls(
            connection=connect(settings),
            alias=settings.es_index,
            index_options=VectorIndexOptions(
                type=settings.es_index_type,
                m=settings.es_hnsw_m,
                ef_construction=settings.es_hnsw_ef_construction,
            ),
            num_candidates_factor=settings.es_num_candidates_factor,
        )

    @property
    def connection(self) -> Connection:
        return self._connection

    # --- models and the index itself ---------------------------------------------------------

    def models(self) -> ModelInfo | None:
        """The models in the mapping's `_meta`, checked against the mapping; None if no index."""
        if self._models is None:
            with translate_errors(self._connection, f"read the mapping of {self._target}"):
                try:
                    mappings = self._client.indices.get_mapping(index=self._target)
                except EsNotFoundError:
                    return None
            concrete, body = next(iter(mappings.body.items()))
            self._models = read_models(concrete, body.get("mappings", {}))
        return self._models

    def record_models(self, models: ModelInfo) -> None:
        recorded = self.models()
        check_models(recorded, models)
        if recorded is not None:
            return
        if self._target == self._alias:
            name, aliases = new_index_name(self._alias), {self._alias: {}}
        else:
            name, aliases = self._target, {}
        with translate_errors(self._connection, f"create the index {name}"):
            self._client.indices.create(
                index=name,
                mappings=index_mappings(models, self._index_options),
                aliases=aliases,
            )
        log.info("created Elasticsearch index %s for %s", name, self._target)
        self._models = models

    def library_root(self) -> str | None:
        """The `root` in the findimage `_meta`, beside the models."""
        with translate_errors(self._connection, f"read the mapping of {self._target}"):
            try:
                mappings = self._client.indices.get_mapping(index=self._target)
            except EsNotFoundError:
                return None
        for body in mappings.body.values():
            root = body.get("mappings", {}).get("_meta", {}).get(META_KEY, {}).get("root")
            if root:
                return str(root)
        return None

    def record_library_root(self, root: str) -> None:
        # A mapping update replaces `_meta` whole, so the rest of it is written back unchanged:
        # https://www.elastic.co/guide/en/elasticsearch/reference/8.11/mapping-meta-field.html
        with translate_errors(self._connection, f"record the library in {self._target}"):
            mappings = self._client.indices.get_mapping(index=self._target)
            for concrete, body in mappings.body.items():
                meta = copy.deepcopy(body.get("mappings", {}).get("_meta", {}))
                meta.setdefault(META_KEY, {})["root"] = root
                self._client.indices.put_mapping(index=concrete, meta=meta)

    # --- writes ------------------------------------------------------------------------------

    def upsert(self, items: Sequence[tuple[ImageDocument, np.ndarray]]) -> list[WriteFailure]:
        if not items:
            return []
        self._require_index()
        actions = (
            {
                "_op_type": "index",
                "_index": self._target,
                "_id": doc.id,
                "_source": to_source(doc, vector),
            }
            for doc, vector in items
        )
        return self._bulk(actions, "write to the index")

    def delete(self, ids: Sequence[str]) -> list[WriteFailure]:
        if not ids:
            return []
        self._require_index()
        actions = ({"_op_type": "delete", "_index": self._target, "_id": i} for i in ids)
        return self._bulk(actions, "delete from the index")

    def _bulk(self, actions: Iterable[dict[str, Any]], action: str) -> list[WriteFailure]:
        failures: list[WriteFailure] = []
        with translate_errors(self._connection, action):
            for ok, result in helpers.streaming_bulk(
                self._client,
                actions,
                chunk_size=BULK_CHUNK_SIZE,
                max_retries=self._bulk_retries,
                initial_backoff=self._bulk_backoff,
                max_backoff=self._bulk_backoff * 8,
                raise_on_error=False,
                yield_ok=False,
                # Never let a write auto-create an index named like the alias.
                require_alias=self._target == self._alias,
            ):
                operation, info = next(iter(result.items()))
                if ok or (operation == "delete" and info.get("status") == 404):
                    continue
                failures.append(WriteFailure(str(info.get("_id")), item_error(info)))
            self._client.indices.refresh(index=self._target)
        return failures

    # --- reads -------------------------------------------------------------------------------

    def search(self, vector: np.ndarray, k: int, folder: str | None = None) -> list[SearchHit]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return self._knn({"query_vector": [float(x) for x in query]}, k, folder)

    def search_by_text(
        self, text: str, model_id: str, k: int, folder: str | None = None
    ) -> list[SearchHit]:
        """kNN on the vector Elasticsearch's own text model makes of `text`, in one round trip."""
        builder = {"text_embedding": {"model_id": model_id, "model_text": text}}
        return self._knn({"query_vector_builder": builder}, k, folder)

    def _knn(self, query: dict[str, Any], k: int, folder: str | None) -> list[SearchHit]:
        k = min(k, MAX_NUM_CANDIDATES)
        if k <= 0:
            return []
        knn: dict[str, Any] = {
            "field": VECTOR_FIELD,
            **query,
            "k": k,
            "num_candidates": min(max(k * self._num_candidates_factor, k), MAX_NUM_CANDIDATES),
        }
        wanted = folder_filter(folder or "")
        if wanted is not None:
            knn["filter"] = wanted
        with translate_errors(self._connection, "search the index"):
            try:
                response = self._client.search(
                    index=self._target, knn=knn, size=k, source={"includes": DOCUMENT_FIELDS}
                )
            except EsNotFoundError as exc:
                if error_type(exc) == _INDEX_NOT_FOUND:
                    self._models = None
                    return []
                raise
            except BadRequestError as exc:
                if "number of dimensions" in error_reason(exc):
                    self._models = None
                    raise ModelMismatchError(
                        f"The Elasticsearch index {self._alias} holds vectors of another size "
                        "than the configured model makes: set FINDIMAGE_IMAGE_MODEL and "
                        "FINDIMAGE_TEXT_MODEL back, or run `findimage index --rebuild`."
                    ) from None
                raise
        return [
            SearchHit(document=to_document(hit["_id"], hit["_source"]), score=float(hit["_score"]))
            for hit in response["hits"]["hits"]
        ]

    def get(self, doc_id: str) -> tuple[ImageDocument, np.ndarray] | None:
        with translate_errors(self._connection, "read from the index"):
            try:
                # Naming the vector field brings it back where Elasticsearch leaves vectors
                # out of _source by default.
                response = self._client.get(
                    index=self._target,
                    id=doc_id,
                    source_includes=[*DOCUMENT_FIELDS, VECTOR_FIELD],
                )
            except EsNotFoundError:
                return None
        source = response["_source"]
        vector = np.asarray(source[VECTOR_FIELD], dtype=np.float32)
        return to_document(response["_id"], source), vector

    def count(self) -> int:
        with translate_errors(self._connection, "count the index"):
            try:
                return int(self._client.count(index=self._target)["count"])
            except EsNotFoundError:
                return 0

    def fingerprints(self) -> dict[str, Fingerprint]:
        result: dict[str, Fingerprint] = {}
        with translate_errors(self._connection, "list the index"):
            if not self._client.indices.exists(index=self._target):
                return result
            for hit in helpers.scan(
                self._client,
                index=self._target,
                size=SCAN_PAGE_SIZE,
                source={"includes": FINGERPRINT_FIELDS},
            ):
                source = hit["_source"]
                result[hit["_id"]] = Fingerprint(
                    path=source["path"],
                    size=int(source["size"]),
                    mtime=float(source["mtime"]),
                    sha256=source["sha256"],
                )
        return result

    def status(self) -> StoreStatus:
        models = self.models()
        indices = self.concrete_indices()
        location = f"{self._connection.location}, index {self._target}"
        if indices:
            location += f" ({', '.join(indices)})"
        else:
            location += " (not created yet: run `findimage index`)"
        return StoreStatus(
            backend="elasticsearch",
            count=self.count(),
            models=models,
            last_indexed_at=self._last_indexed_at() if models else None,
            location=location,
            library_root=self.library_root() if models else None,
        )

    def close(self) -> None:
        self._client.close()

    def concrete_indices(self) -> list[str]:
        """The indices behind the alias (or the target index itself)."""
        with translate_errors(self._connection, "read the aliases"):
            try:
                return sorted(self._client.indices.get(index=self._target).body)
            except EsNotFoundError:
                return []

    def _last_indexed_at(self) -> datetime | None:
        with translate_errors(self._connection, "search the index"):
            response = self._client.search(
                index=self._target,
                size=1,
                sort=[{"indexed_at": {"order": "desc"}}],
                source={"includes": ["indexed_at"]},
            )
        hits = response["hits"]["hits"]
        return datetime.fromisoformat(hits[0]["_source"]["indexed_at"]) if hits else None

    def _require_index(self) -> None:
        if self.models() is None:
            raise BackendUnavailableError(
                f"The Elasticsearch index {self._target} does not exist: "
                "run `findimage index` to create it."
            )

    # --- rebuilds ----------------------------------------------------------------------------

    @contextmanager
    def rebuilding(self) -> Iterator[ElasticsearchStore]:
        """A store on a new concrete index, for the indexer to fill.

        When the block ends without error, the alias moves from the old index to the new one
        in one `update_aliases` call and the old index is deleted; on error the new index is
        deleted and the alias is left alone. Searches use the old index until the swap.
        """
        fresh = ElasticsearchStore(
            connection=self._connection,
            alias=self._alias,
            index_options=self._index_options,
            num_candidates_factor=self._num_candidates_factor,
            bulk_retries=self._bulk_retries,
            bulk_backoff_seconds=self._bulk_backoff,
            target=new_index_name(self._alias),
        )
        try:
            yield fresh
        except BaseException:
            self._discard(fresh._target)
            raise
        if fresh.models() is None:
            return
        self._swap_alias(fresh._target)

    def _swap_alias(self, fresh: str) -> None:
        old = [name for name in self.concrete_indices() if name != self._alias]
        actions: list[dict[str, Any]] = [
            {"remove": {"index": name, "alias": self._alias}} for name in old
        ]
        actions.append({"add": {"index": fresh, "alias": self._alias}})
        with translate_errors(self._connection, f"move the alias {self._alias} to {fresh}"):
            self._client.indices.update_aliases(actions=actions)
        log.info("alias %s now points at %s", self._alias, fresh)
        self._models = None
        for name in old:
            with translate_errors(self._connection, f"delete the old index {name}"):
                self._client.indices.delete(index=name)
            log.info("deleted the old index %s", name)

    def _discard(self, name: str) -> None:
        """Best effort: a half-filled index from a failed rebuild is not worth keeping."""
        try:
            self._client.indices.delete(index=name)
        except (ApiError, TransportError) as exc:
            log.warning("could not delete the unfinished index %s: %r", name, exc)


def new_index_name(alias: str) -> str:
    """A fresh concrete index name under the alias, sortable by creation time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{alias}-{stamp}-{secrets.token_hex(3)}"
