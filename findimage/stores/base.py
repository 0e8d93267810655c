"""The interface every vector store implements, and the checks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from findimage.documents import (
    Fingerprint,
    ImageDocument,
    ModelInfo,
    SearchHit,
    StoreStatus,
    WriteFailure,
)
from findimage.errors import ModelMismatchError
from findimage.filters import Filters


class VectorStore(ABC):
    """Documents with one L2-normalized float32 vector each, searchable by cosine kNN.

    Implementations are safe to use from one writer and many readers at once. A search sees
    every write made before the last `refresh()` (a store may show writes sooner). Reading
    never creates an index: a store with no index answers as an empty one.
    """

    # The setting that points findimage at another index, named in messages.
    location_setting = "FINDIMAGE_DATA_DIR"

    @abstractmethod
    def models(self) -> ModelInfo | None:
        """The models recorded for this index, or None if nothing was ever written."""

    def reload(self) -> None:  # noqa: B027 - stores that keep nothing between reads need nothing
        """Read the index's recorded models and library again at their next use: another
        process (a rebuild, a fresh index in the same place) may have changed them."""

    @abstractmethod
    def record_models(self, models: ModelInfo) -> None:
        """Record the models on an index that has none; refuse different ones."""

    @abstractmethod
    def library_root(self) -> str | None:
        """The absolute folder the index was built from, or None if none is recorded."""

    @abstractmethod
    def record_library_root(self, root: str) -> None:
        """Record the library folder, replacing the one recorded before.

        Called once the models are recorded, so the index exists.
        """

    @abstractmethod
    def upsert(self, items: Sequence[tuple[ImageDocument, np.ndarray]]) -> list[WriteFailure]:
        """Insert or replace documents with their vectors, all in one batch.

        Returns the documents that were not written, each with the store's reason; a store
        that writes a batch all or nothing raises instead.
        """

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> list[WriteFailure]:
        """Remove documents; unknown ids are ignored. Returns the ones that could not be removed."""

    @abstractmethod
    def search(
        self,
        vector: np.ndarray,
        k: int,
        folder: str | None = None,
        filters: Filters | None = None,
    ) -> list[SearchHit]:
        """The k documents closest to `vector`, best first.

        `folder` keeps only documents in that folder or below it ("a/b" matches "a/b" and
        "a/b/c", never "a/bc"); `filters` keeps those of those dates and places
        (findimage/filters.py). Both apply before ranking: k hits come back when k match.
        """

    @abstractmethod
    def get(self, doc_id: str) -> tuple[ImageDocument, np.ndarray] | None:
        """One document and its stored vector, or None."""

    @abstractmethod
    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` ids that start with `prefix`, so a short id can name a picture."""

    def get_many(self, doc_ids: Sequence[str]) -> dict[str, tuple[ImageDocument, np.ndarray]]:
        """Several documents with their vectors, by id; unknown ids are left out."""
        found = {}
        for doc_id in doc_ids:
            item = self.get(doc_id)
            if item is not None:
                found[doc_id] = item
        return found

    def writing(self, shard: tuple[int, int] | None = None) -> AbstractContextManager[None]:
        """Held by an indexing run for its whole duration, so two runs never write the same
        index at once; a store refuses a second writer with one sentence naming the first.
        A run writing shard (K, N) of the library holds the lock of that shard only, beside
        the other shards' workers (Elasticsearch; the embedded store has no shards).
        By default none: the embedded store holds a file lock, the Elasticsearch store a
        lease document."""
        return nullcontext()

    def refresh(self) -> None:  # noqa: B027 - stores that show writes at once need nothing here
        """Make every write so far visible to searches (once per indexing run)."""

    @abstractmethod
    def count(self) -> int:
        """How many documents the index holds."""

    def empty_here(self) -> bool:
        """Whether the index is empty, where that costs no request to a server: a remote
        store answers False and lets a search that finds nothing ask (one request a search)."""
        return False

    @abstractmethod
    def fingerprints(self) -> dict[str, Fingerprint]:
        """Every id in the index with what tells whether its file changed."""

    @abstractmethod
    def status(self) -> StoreStatus:
        """What `findimage status` and the Slack home tab show."""

    def close(self) -> None:  # noqa: B027 - stores without resources need nothing here
        """Release connections and files."""


def check_models(recorded: ModelInfo | None, configured: ModelInfo) -> None:
    """Refuse to mix vectors of two different models, or of two engines, in one index."""
    if recorded is None or recorded == configured:
        return
    if (recorded.image_model, recorded.text_model, recorded.dims) == (
        configured.image_model,
        configured.text_model,
        configured.dims,
    ):
        raise ModelMismatchError(
            f"The index was built by the {recorded.engine} {recorded.precision} image engine, "
            f"but the settings say {configured.engine} {configured.precision}: set "
            f"{_engine_settings(recorded, configured)} back, or rebuild the index with the new "
            "engine."
        )
    raise ModelMismatchError(
        "The index was built with image model "
        f"'{recorded.image_model}' and text model '{recorded.text_model}' ({recorded.dims} dims), "
        f"but the settings name '{configured.image_model}' and '{configured.text_model}' "
        f"({configured.dims} dims). Set FINDIMAGE_IMAGE_MODEL and FINDIMAGE_TEXT_MODEL back, "
        "or rebuild the index with the new models."
    )


def _engine_settings(recorded: ModelInfo, configured: ModelInfo) -> str:
    """The settings that run the recorded engine again. fp16 is not a FINDIMAGE_PRECISION:
    it is what FINDIMAGE_DEVICE=cuda runs (findimage/inference/half.py)."""
    if recorded.precision == "fp16":
        return "FINDIMAGE_ENGINE=torch and FINDIMAGE_DEVICE=cuda"
    named = f"FINDIMAGE_ENGINE={recorded.engine} and FINDIMAGE_PRECISION={recorded.precision}"
    return f"FINDIMAGE_DEVICE=cpu, {named}" if configured.precision == "fp16" else named


def check_model_names(recorded: ModelInfo | None, image_model: str, text_model: str) -> None:
    """`check_models` by name alone, so no model loads to learn its dims.

    The recorded dims follow from the recorded names; a vector of another length is refused
    by the store itself. The engine is left out: a query may run on another engine than the
    one that wrote the index (every allowed engine agrees with PyTorch fp32, docs/speed.md);
    only the indexer refuses to mix engines in one index, when it records its models.
    """
    if recorded is not None:
        configured = ModelInfo(
            image_model,
            text_model,
            recorded.dims,
            engine=recorded.engine,
            precision=recorded.precision,
        )
        check_models(recorded, configured)


def cosine_score(cosine: float) -> float:
    """Elasticsearch's cosine _score: (1 + cos) / 2, in [0, 1]."""
    return float((1.0 + cosine) / 2.0)
