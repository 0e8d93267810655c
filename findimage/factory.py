"""Builds the store, the encoders and the search service from the settings."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from findimage.documents import IndexReport, ModelInfo
from findimage.encoders import ClipEncoder, OnnxEncoder, TextEncoder
from findimage.errors import ConfigError
from findimage.inference.half import Placement, placement
from findimage.search import SearchService, TextSearch
from findimage.settings import Settings
from findimage.stores.base import VectorStore, check_model_names
from indexer.indexer import Indexer
from indexer.shards import Shard, ShardProgress
from indexer.watch import LibraryWatcher, WatchSettings

if TYPE_CHECKING:
    from findimage.stores.elasticsearch.store import ElasticsearchStore

Encoder = ClipEncoder | OnnxEncoder


def build_store(settings: Settings, repair: bool = False) -> VectorStore:
    """The configured store. `repair` is for the commands that index: they move a damaged
    embedded index aside and build it again, where the others say it is damaged."""
    if settings.backend == "elasticsearch":
        from findimage.stores.elasticsearch.store import ElasticsearchStore

        return ElasticsearchStore.from_settings(settings)
    from findimage.stores.embedded import EmbeddedStore

    # The scan runs on one BLAS thread: measured, OpenBLAS's extra threads keep spinning
    # after a scan and slow the next query's encoder down by half (BENCHMARKS.md).
    return EmbeddedStore(settings.data_dir, scan_threads=1, repair=repair)


def build_encoders(settings: Settings) -> tuple[Encoder, Encoder]:
    """The image and the text encoder, on the configured engine.

    On PyTorch one model serves both towers when both settings name the same one; an
    exported engine runs each tower as its own graph.
    """
    threads = settings.compute_threads
    if settings.engine == "torch":
        if settings.precision != "fp32":
            raise ConfigError(
                "FINDIMAGE_PRECISION=int8 needs FINDIMAGE_ENGINE=onnx: PyTorch runs fp32 only."
            )
        where = device_placement(settings)
        image = ClipEncoder(
            settings.image_model,
            "FINDIMAGE_IMAGE_MODEL",
            settings.device,
            torch_batch(settings),
            threads,
            half=where.half,
        )
        if settings.text_model == settings.image_model:
            return image, image
        text = ClipEncoder(
            settings.text_model,
            "FINDIMAGE_TEXT_MODEL",
            settings.device,
            torch_batch(settings),
            threads,
        )
        return image, text
    if settings.device == "cuda":
        raise ConfigError(
            "FINDIMAGE_DEVICE=cuda needs FINDIMAGE_ENGINE=torch: the ONNX engine runs on the CPU."
        )
    cache = settings.model_cache_dir
    return (
        OnnxEncoder(
            settings.image_model,
            "FINDIMAGE_IMAGE_MODEL",
            "image",
            settings.precision,
            cache,
            threads,
        ),
        OnnxEncoder(
            settings.text_model,
            "FINDIMAGE_TEXT_MODEL",
            "text",
            settings.precision,
            cache,
            threads,
        ),
    )


def device_placement(settings: Settings) -> Placement:
    """FINDIMAGE_DEVICE, checked against the GPUs PyTorch sees (imported only for cuda)."""

    def cuda_available() -> bool:
        import torch

        return bool(torch.cuda.is_available())

    return placement(settings.device, cuda_available)


def torch_batch(settings: Settings) -> int:
    """Pictures per PyTorch batch: a GPU takes far larger ones than a CPU gains from."""
    return settings.cuda_batch_size if settings.device == "cuda" else settings.batch_size


def build_search_service(settings: Settings, store: VectorStore | None = None) -> SearchService:
    store = store or build_store(settings)
    image_encoder, local_text_encoder = build_encoders(settings)
    text_encoder, text_search = build_text_side(settings, store, local_text_encoder)
    return SearchService(
        store=store,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        max_file_bytes=settings.max_file_bytes,
        text_search=text_search,
    )


def build_text_side(
    settings: Settings, store: VectorStore, local: TextEncoder
) -> tuple[TextEncoder, TextSearch | None]:
    """Where text vectors come from: the local model, or the one deployed in Elasticsearch.

    With FINDIMAGE_ES_TEXT_MODEL_ID, Elasticsearch embeds the text: inside the search
    (query_vector_builder, one round trip) or by `_infer` first (FINDIMAGE_TEXT_VECTORS=infer).
    """
    if settings.backend != "elasticsearch" or not settings.es_text_model_id:
        return local, None
    from findimage.stores.elasticsearch.store import ElasticsearchStore
    from findimage.stores.elasticsearch.text_model import ElasticsearchTextModel

    if not isinstance(store, ElasticsearchStore):
        return local, None
    remote = ElasticsearchTextModel(store, settings.es_text_model_id, settings.text_model)
    return remote, remote if settings.text_vectors == "query_vector_builder" else None


def build_watcher(
    settings: Settings,
    store: VectorStore,
    folder: Path,
    report: Callable[[IndexReport, str], None],
) -> LibraryWatcher:
    """The watcher of `index --watch` and `serve --watch`: the batch indexer on `store`, run
    on each burst of changes under `folder`, never woken by the index's own writes."""
    timing = WatchSettings(
        debounce_ms=settings.watch_debounce_ms,
        rescan_seconds=settings.watch_rescan_seconds,
        polling=settings.watch_polling,
    )
    return LibraryWatcher(
        build_indexer(settings, store), folder, timing, report, ignore=[settings.data_dir]
    )


def index_target(
    settings: Settings, store: VectorStore, rebuild: bool
) -> AbstractContextManager[VectorStore]:
    """Where a run writes: the store itself, or with --rebuild a new Elasticsearch index that
    replaces it at the end."""
    if not rebuild:
        return nullcontext(store)
    from findimage.stores.elasticsearch.rebuild import rebuilding
    from findimage.stores.elasticsearch.store import ElasticsearchStore

    if not isinstance(store, ElasticsearchStore):
        raise ConfigError(
            "--rebuild is for FINDIMAGE_BACKEND=elasticsearch; to rebuild the embedded index, "
            f"delete {settings.data_dir} and run `findimage index` again."
        )
    return rebuilding(store, settings.image_model, settings.text_model)


def _elasticsearch(store: VectorStore, what: str) -> ElasticsearchStore:
    from findimage.stores.elasticsearch.store import ElasticsearchStore

    if not isinstance(store, ElasticsearchStore):
        raise ConfigError(
            f"{what} is for FINDIMAGE_BACKEND=elasticsearch: the embedded index is one SQLite "
            "file with one writer, so run `findimage index` without it."
        )
    return store


def sharded_target(
    settings: Settings, store: VectorStore, shard: Shard, into: str | None
) -> tuple[VectorStore, ShardProgress]:
    """Where shard worker `shard` writes (the live index, or the prepared index `into`), and
    the progress document it keeps there."""
    from findimage.stores.elasticsearch.progress import ShardProgressDocument
    from findimage.stores.elasticsearch.rebuild import Rebuild

    live = _elasticsearch(store, "--shard")
    target = live
    if into is not None:
        target = Rebuild(live, settings.image_model, settings.text_model).prepared(into)
    check_model_names(target.models(), settings.image_model, settings.text_model)
    progress = ShardProgressDocument(
        live.connection,
        live.alias,
        target.target,
        shard.number,
        shard.count,
        (settings.image_model, settings.text_model),
    )
    return target, progress


def prepare_rebuild(settings: Settings, store: VectorStore) -> str:
    """Create the new index of a rebuild spread over workers; its name."""
    from findimage.stores.elasticsearch.rebuild import Rebuild

    live = _elasticsearch(store, "--rebuild --prepare")
    models = _model_info(*build_encoders(settings))
    return Rebuild(live, settings.image_model, settings.text_model).prepare(models)


def swap_rebuild(settings: Settings, store: VectorStore, name: str) -> bool:
    """Put the prepared index `name` live once every shard is done; False if it was already."""
    from findimage.stores.elasticsearch.rebuild import Rebuild

    live = _elasticsearch(store, "--rebuild --swap")
    return Rebuild(live, settings.image_model, settings.text_model).swap(name)


def build_indexer(settings: Settings, store: VectorStore) -> Indexer:
    image_encoder, text_encoder = build_encoders(settings)
    return Indexer(
        store=store,
        image_encoder=image_encoder,
        models=lambda: _model_info(image_encoder, text_encoder),
        batch_size=_indexer_batch(settings),
        decode_workers=settings.decode_threads,
        max_file_bytes=settings.max_file_bytes,
        s3_endpoint_url=settings.s3_endpoint_url,
        exclude=settings.exclude_patterns,
    )


def _indexer_batch(settings: Settings) -> int:
    """Pictures handed to the encoder at a time.

    PyTorch runs a batch as one call, so FINDIMAGE_BATCH_SIZE it is. The ONNX engine runs
    pictures one by one on its threads: small hand-overs keep it fed from the first
    decoded picture to the last (measured, BENCHMARKS.md).
    """
    if settings.engine == "torch":
        return torch_batch(settings)
    return min(settings.batch_size, 4 * settings.compute_threads)


def _model_info(image_encoder: Encoder, text_encoder: Encoder) -> ModelInfo:
    return ModelInfo(
        image_model=image_encoder.model_name,
        text_model=text_encoder.model_name,
        dims=image_encoder.dims,
        engine=image_encoder.engine,
        precision=image_encoder.precision,
    )
