"""The Elasticsearch store: documents and vectors in one index behind an alias, kNN by `knn`.

Reads and writes go through the alias (FINDIMAGE_ES_INDEX), so a rebuild (rebuild.py) can
fill a new concrete index while searches keep using the old one, then move the alias in one
atomic `_aliases` call. Writes are not refreshed one by one: the indexer calls `refresh()`
once at the end of a run, as Elastic's indexing-speed guide advises
(https://www.elastic.co/docs/deploy-manage/production-guidance/optimize-performance/indexing-speed).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from elasticsearch import BadRequestError, helpers
from elasticsearch import NotFoundError as EsNotFoundError

from findimage.documents import (
    Fingerprint,
    ImageDocument,
    ModelInfo,
    SearchHit,
    ShardReport,
    StoreStatus,
    WriteFailure,
)
from findimage.errors import BackendUnavailableError, ConfigError, IndexChangedError
from findimage.filters import Filters
from findimage.settings import Settings
from findimage.stores.base import VectorStore, check_models
from findimage.stores.elasticsearch.connection import (
    Connection,
    connect,
    error_reason,
    error_type,
    item_error,
    translate_errors,
)
from findimage.stores.elasticsearch.indices import (
    BUILD_SETTINGS,
    FIRST_INDEX_SUFFIX,
    leftover_indices,
)
from findimage.stores.elasticsearch.mapping import (
    DOCUMENT_FIELDS,
    FILTER_FIELDS,
    FINGERPRINT_FIELDS,
    META_KEY,
    VECTOR_FIELD,
    VectorIndexOptions,
    has_findimage_mark,
    index_mappings,
    knn_filter,
    missing_filter_field,
    not_created_by_findimage,
    read_models,
    to_document,
    to_fingerprint,
    to_source,
)
from findimage.stores.elasticsearch.progress import latest_run, shard_reports
from findimage.stores.elasticsearch.writer_lease import WriterLease

if TYPE_CHECKING:
    from findimage.stores.elasticsearch.versions import VersionedElasticsearch

log = logging.getLogger(__name__)

MAX_NUM_CANDIDATES = 10_000
BULK_CHUNK_SIZE = 500
SCAN_PAGE_SIZE = 1000
INDEX_NOT_FOUND = "index_not_found_exception"
# The index a first `findimage index` creates: one fixed name, so two first runs at once
# both land in it (the second `create` is refused and reads what the first made).


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
        self._alias = alias
        self._target = target or alias
        self._index_options = index_options
        self._num_candidates_factor = num_candidates_factor
        self._bulk_retries = bulk_retries
        self._bulk_backoff = bulk_backoff_seconds
        # The mappings behind the target, as last read (None: not read since `reload`).
        self._mapping_cache: dict[str, Any] | None = None
        self._models: ModelInfo | None = None
        # The concrete index whose _meta gave `_models`: hits from another one mean the
        # alias has moved since.
        self._models_index: str | None = None
        # That index's mapped fields, which date and place filters need.
        self._properties: dict[str, Any] = {}
        # The writer lease of the indexing run under way through this store, if any.
        self._lease: WriterLease | None = None

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

    @property
    def alias(self) -> str:
        return self._alias

    @property
    def target(self) -> str:
        return self._target

    @property
    def index_options(self) -> VectorIndexOptions:
        return self._index_options

    @property
    def _client(self) -> VersionedElasticsearch:
        return self._connection.client

    def with_target(self, target: str) -> ElasticsearchStore:
        """The same store, reading and writing `target` (a rebuild's new index)."""
        return ElasticsearchStore(
            connection=self._connection,
            alias=self._alias,
            index_options=self._index_options,
            num_candidates_factor=self._num_candidates_factor,
            bulk_retries=self._bulk_retries,
            bulk_backoff_seconds=self._bulk_backoff,
            target=target,
        )

    # --- models and the index itself ---------------------------------------------------------

    def models(self) -> ModelInfo | None:
        """The models in the mapping's `_meta`, checked against the mapping; None if no index.

        The mapping is read once and kept (with the library root beside the models) until
        `reload()`, which each indexing run after the first calls, or until a search finds
        the alias moved.
        """
        mappings = self._mappings()
        if not mappings:
            return None
        # Every index behind the alias must be findimage's: a write or a delete through the
        # alias could reach any of them.
        for concrete, body in sorted(mappings.items()):
            if not has_findimage_mark(body.get("mappings", {})):
                raise not_created_by_findimage(concrete)
        if self._models is None:
            concrete, body = sorted(mappings.items())[-1]
            self._models = read_models(concrete, body.get("mappings", {}))
            self._models_index = concrete
            self._properties = body.get("mappings", {}).get("properties", {})
        return self._models

    def reload(self) -> None:
        self._forget_models()

    def _mappings(self) -> dict[str, Any]:
        """The mappings of the indices behind the target, read once until forgotten."""
        if self._mapping_cache is None:
            with translate_errors(self._connection, f"read the mapping of {self._target}"):
                try:
                    self._mapping_cache = dict(
                        self._client.indices.get_mapping(index=self._target).body
                    )
                except EsNotFoundError:
                    self._mapping_cache = {}
        return self._mapping_cache

    def record_models(self, models: ModelInfo) -> None:
        recorded = self.models()
        check_models(recorded, models)
        if recorded is not None:
            return
        aliases: dict[str, dict[str, Any]]
        if self._target == self._alias:
            name, aliases = f"{self._alias}-{FIRST_INDEX_SUFFIX}", {self._alias: {}}
            settings = None
        else:
            name, aliases, settings = self._target, {}, BUILD_SETTINGS
        with translate_errors(self._connection, f"create the index {name}"):
            try:
                self.create_index(name, models, aliases, settings)
            except BadRequestError as exc:
                if error_type(exc) != "resource_already_exists_exception":
                    raise
                # Another first run created it a moment ago: use what it recorded.
                log.info("index %s was created by another run", name)
                self._forget_models()
                check_models(self.models(), models)
                if self._models is None:
                    raise BackendUnavailableError(
                        f"The Elasticsearch index {name} exists but the alias {self._alias} "
                        "does not lead to it: run `findimage index --rebuild`."
                    ) from None
                return
        log.info("created Elasticsearch index %s for %s", name, self._target)
        mappings = index_mappings(models, self._index_options)
        self._mapping_cache = {name: {"mappings": mappings}}
        self._models = models
        self._models_index = name
        self._properties = mappings["properties"]

    def create_index(
        self,
        name: str,
        models: ModelInfo,
        aliases: dict[str, Any],
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._client.indices.create(
            index=name,
            mappings=index_mappings(models, self._index_options),
            aliases=aliases,
            settings=settings,
        )

    def library_root(self) -> str | None:
        """The `root` in the findimage `_meta`, beside the models."""
        for body in self._mappings().values():
            root = body.get("mappings", {}).get("_meta", {}).get(META_KEY, {}).get("root")
            if root:
                return str(root)
        return None

    def record_library_root(self, root: str) -> None:
        # A mapping update replaces `_meta` whole, so the rest of it is written back unchanged:
        # https://www.elastic.co/guide/en/elasticsearch/reference/8.11/mapping-meta-field.html
        with translate_errors(self._connection, f"record the library in {self._target}"):
            for concrete, body in self._mappings().items():
                mappings = body.setdefault("mappings", {})
                meta = copy.deepcopy(mappings.get("_meta", {}))
                meta.setdefault(META_KEY, {})["root"] = root
                self._client.indices.put_mapping(index=concrete, meta=meta)
                mappings["_meta"] = meta

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

    @contextmanager
    def writing(self, shard: tuple[int, int] | None = None) -> Iterator[None]:
        """The alias's writer lease (writer_lease.py) for the run's whole duration: a second
        run is refused with one sentence naming the first. With `shard` (K, N), the lease
        of that shard only, for runs that each write one shard of the library on purpose."""
        lease = WriterLease(self._connection, self._alias, shard)
        with lease.held():
            self._lease = lease
            try:
                yield
            finally:
                self._lease = None

    def refresh(self) -> None:
        """Make every write so far searchable: once per indexing run, not once per batch."""
        if self.models() is None:
            return
        with translate_errors(self._connection, f"refresh {self._target}"):
            self._client.indices.refresh(index=self._target)

    def _bulk(self, actions: Iterable[dict[str, Any]], action: str) -> list[WriteFailure]:
        if self._lease is not None and self._lease.lost.is_set():
            raise BackendUnavailableError(
                f"Another findimage run took over writing the Elasticsearch index {self._alias} "
                "while this one was stalled: run again once it is done."
            )
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
        return failures

    # --- reads -------------------------------------------------------------------------------

    def search(
        self,
        vector: np.ndarray,
        k: int,
        folder: str | None = None,
        filters: Filters | None = None,
    ) -> list[SearchHit]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return self._knn({"query_vector": [float(x) for x in query]}, k, folder, filters)

    def by_text(
        self,
        text: str,
        model_id: str,
        k: int,
        folder: str | None = None,
        filters: Filters | None = None,
    ) -> list[SearchHit]:
        """kNN on the vector Elasticsearch's own text model makes of `text`, in one round trip."""
        builder = {"text_embedding": {"model_id": model_id, "model_text": text}}
        return self._knn({"query_vector_builder": builder}, k, folder, filters)

    def _knn(
        self, query: dict[str, Any], k: int, folder: str | None, filters: Filters | None
    ) -> list[SearchHit]:
        k = min(k, MAX_NUM_CANDIDATES)
        if k <= 0:
            return []
        if filters:
            self._check_filter_fields(filters)
        knn: dict[str, Any] = {
            "field": VECTOR_FIELD,
            **query,
            "k": k,
            "num_candidates": min(max(k * self._num_candidates_factor, k), MAX_NUM_CANDIDATES),
        }
        wanted = knn_filter(folder, filters)
        if wanted is not None:
            knn["filter"] = wanted
        response = self._search_once(knn, k)
        if response is None:
            # The alias moved and its old index was deleted while this search ran: once more,
            # on the index the alias leads to now.
            self._forget_models()
            response = self._search_once(knn, k)
            if response is None:
                return []
        hits = response["hits"]["hits"]
        self._check_index_of(hits)
        return [self._hit(hit) for hit in hits]

    def _search_once(self, knn: dict[str, Any], k: int) -> Any:
        with translate_errors(self._connection, "search the index"):
            try:
                return self._client.search(
                    index=self._target, knn=knn, size=k, source={"includes": DOCUMENT_FIELDS}
                )
            except EsNotFoundError as exc:
                if error_type(exc) == INDEX_NOT_FOUND:
                    return None
                raise
            except BadRequestError as exc:
                if "number of dimensions" in error_reason(exc):
                    self._forget_models()
                    raise IndexChangedError(
                        f"The Elasticsearch index {self._alias} holds vectors of another size "
                        "than the configured model makes: set FINDIMAGE_IMAGE_MODEL and "
                        "FINDIMAGE_TEXT_MODEL back, or run `findimage index --rebuild`."
                    ) from None
                raise

    def _check_index_of(self, hits: list[dict[str, Any]]) -> None:
        """Refuse hits from an index other than the one whose models were checked."""
        checked, before = self._models_index, self._models
        if checked is None or before is None:
            return
        if all(hit.get("_index") == checked for hit in hits):
            return
        self._forget_models()
        now = self.models()
        log.info("the alias %s moved from %s to %s", self._alias, checked, self._models_index)
        if now != before:
            raise IndexChangedError(
                f"The Elasticsearch index {self._alias} was rebuilt with other models "
                f"({now.image_model if now else 'none'}) than the ones this process checked."
            )

    def _forget_models(self) -> None:
        self._mapping_cache = None
        self._models = None
        self._models_index = None
        self._properties = {}

    def _check_filter_fields(self, filters: Filters) -> None:
        """An index whose mapping lacks a filter's field (made by hand, or by another tool's
        template) would match nothing, or fail: say how to get one that has it."""
        if self.models() is None:
            return
        missing = missing_filter_field(self._properties, filters)
        if missing is not None:
            kind = "date" if missing == "taken_at" else "place"
            raise ConfigError(
                f"The Elasticsearch index {self._alias} has no {FILTER_FIELDS[missing]} field "
                f"'{missing}' to filter by {kind}: run `findimage index --rebuild` to rebuild it "
                "with the current mapping."
            )

    def _hit(self, hit: dict[str, Any]) -> SearchHit:
        document = to_document(hit["_id"], hit["_source"], hit.get("_index", self._target))
        return SearchHit(document=document, score=float(hit["_score"]))

    def get(self, doc_id: str) -> tuple[ImageDocument, np.ndarray] | None:
        return self.get_many([doc_id]).get(doc_id)

    def get_many(self, doc_ids: Sequence[str]) -> dict[str, tuple[ImageDocument, np.ndarray]]:
        """Documents with their vectors, in one `_mget` (realtime, like a get)."""
        if not doc_ids:
            return {}
        source: dict[str, Any] = {"includes": [*DOCUMENT_FIELDS, VECTOR_FIELD]}
        if self.leaves_vectors_out():
            source["exclude_vectors"] = False
        with translate_errors(self._connection, "read from the index"):
            try:
                response = self._client.mget(
                    docs=[{"_index": self._target, "_id": i, "_source": source} for i in doc_ids]
                )
            except EsNotFoundError:
                return {}
        found: dict[str, tuple[ImageDocument, np.ndarray]] = {}
        for doc in response["docs"]:
            if not doc.get("found"):
                if doc.get("error", {}).get("type") not in (None, INDEX_NOT_FOUND):
                    raise BackendUnavailableError(
                        f"Elasticsearch could not read {doc['_id']} from {self._target}: "
                        f"{doc['error'].get('reason', doc['error'].get('type'))}."
                    )
                continue
            vector = doc["_source"].get(VECTOR_FIELD)
            if vector is None:
                raise BackendUnavailableError(
                    f"Elasticsearch returned the document {doc['_id']} of {doc['_index']} "
                    "without its vector: check that the index keeps vectors in _source."
                )
            document = to_document(doc["_id"], doc["_source"], doc["_index"])
            found[doc["_id"]] = (document, np.asarray(vector, dtype=np.float32))
        return found

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """A prefix query on the `id` keyword field, which every document's source fills with
        its _id (https://www.elastic.co/docs/reference/query-languages/query-dsl/
        query-dsl-prefix-query)."""
        with translate_errors(self._connection, "read from the index"):
            try:
                response = self._client.search(
                    index=self._target,
                    query={"prefix": {"id": {"value": prefix}}},
                    size=limit,
                    source=False,
                )
            except EsNotFoundError:
                return []
        return [hit["_id"] for hit in response["hits"]["hits"]]

    def leaves_vectors_out(self) -> bool:
        """From 9.2, vectors are left out of `_source` unless asked for (`exclude_vectors`,
        a key earlier versions refuse): https://www.elastic.co/docs/reference/elasticsearch/
        mapping-reference/dense-vector."""
        cluster = self._client.cluster_info
        return cluster is not None and cluster.version >= (9, 2)

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
                result[hit["_id"]] = to_fingerprint(hit["_id"], hit["_source"], hit["_index"])
        return result

    def status(self) -> StoreStatus:
        models = self.models()
        indices = self.concrete_indices()
        location = f"{self._connection.location}, index {self._target}"
        if indices:
            location += f" ({', '.join(indices)})"
        else:
            location += " (not created yet: run `findimage index`)"
        leftovers = leftover_indices(self._connection, self._alias)
        if leftovers:
            location += (
                f"; left over from unfinished rebuilds: {', '.join(leftovers)} "
                "(the next `findimage index --rebuild` removes them)"
            )
        return StoreStatus(
            backend="elasticsearch",
            count=self.count(),
            models=models,
            last_indexed_at=self._last_indexed_at() if models else None,
            location=location,
            library_root=self.library_root() if models else None,
            shards=self._shard_reports(indices, leftovers),
        )

    def _shard_reports(self, live: list[str], leftovers: list[str]) -> tuple[ShardReport, ...]:
        """The latest sharded run into the alias, the live index and each unfinished rebuild."""
        reports = shard_reports(self._connection, self._alias, [self._alias, *live, *leftovers])
        latest: list[ShardReport] = []
        for index in sorted({report.index for report in reports}):
            latest += latest_run([report for report in reports if report.index == index])
        return tuple(latest)

    def close(self) -> None:
        self._connection.close()

    def concrete_indices(self) -> list[str]:
        """The indices behind the alias (or the target index itself)."""
        with translate_errors(self._connection, "read the aliases"):
            try:
                return sorted(self._client.indices.get(index=self._target).body)
            except EsNotFoundError:
                return []

    def _last_indexed_at(self) -> Any:
        from datetime import datetime

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
        if self._target == self._alias and self._models_index == self._alias:
            raise ConfigError(
                f"{self._alias} is an Elasticsearch index, not an alias, so findimage cannot "
                "write through it: run `findimage index --rebuild` to move it behind an alias."
            )
