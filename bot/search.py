"""The search service shared by the command line and the Slack bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bot.documents import ModelInfo, SearchHit, StoreStatus
from bot.encoders import ImageEncoder, RemoteTextEncoder, TextEncoder
from bot.errors import ConfigError, ImageError, IndexEmptyError, NotFoundError
from bot.images import decode_image
from bot.stores.base import VectorStore, check_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchQuery:
    """Where to look and how many results; `offset` pages through them."""

    k: int
    folder: str | None = None
    offset: int = 0


class TextSearch(Protocol):
    """Search by text in one step, where the store embeds the text itself."""

    def search_text(self, text: str, k: int, folder: str | None) -> list[SearchHit]: ...


class SearchService:
    """Text, picture or indexed id in; ranked hits out, whatever the store is."""

    def __init__(
        self,
        store: VectorStore,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        max_file_bytes: int,
        text_search: TextSearch | None = None,
    ):
        """With `text_search`, text queries go to it instead of `text_encoder` plus the store."""
        self.store = store
        self._image_encoder = image_encoder
        self._text_encoder = text_encoder
        self._max_file_bytes = max_file_bytes
        self._text_search = text_search

    def by_text(self, text: str, query: SearchQuery) -> list[SearchHit]:
        text = text.strip()
        if not text:
            raise ConfigError("Say what to look for, for example: snowy mountain.")
        self._check_models()
        if self._text_search is not None:
            hits = self._text_search.search_text(text, query.k + query.offset, query.folder)
            return self._page(hits, query)
        vector = self._text_encoder.encode_texts([text])[0]
        return self._search(vector, query)

    def by_image(self, data: bytes, query: SearchQuery) -> list[SearchHit]:
        try:
            decoded = decode_image(
                data, self._max_file_bytes, min_side=self._image_encoder.input_side
            )
        except ImageError as exc:
            raise ImageError(f"That picture cannot be used: {exc}.") from exc
        self._check_models()
        vector = self._image_encoder.encode_images([decoded.image])[0]
        return self._search(vector, query)

    def like(self, doc_id: str, query: SearchQuery) -> list[SearchHit]:
        """Pictures like an indexed one, from its stored vector, without the picture itself."""
        self._check_models()
        found = self.store.get(doc_id)
        if found is None:
            raise NotFoundError(f"No picture with id {doc_id} is in the index.")
        hits = self.store.search(found[1], query.k + query.offset + 1, query.folder)
        others = [hit for hit in hits if hit.document.id != doc_id]
        return others[query.offset : query.offset + query.k]

    def status(self) -> StoreStatus:
        return self.store.status()

    def text_model_problem(self) -> str | None:
        """One plain sentence when text search cannot work now, e.g. a remote model is stopped."""
        if isinstance(self._text_encoder, RemoteTextEncoder):
            return self._text_encoder.problem()
        return None

    def _check_models(self) -> None:
        """Refuse an index built with other models.

        By name: the recorded dims follow from the recorded names, and asking a model for its
        dims would load it, where a text query needs only the text model (and with a model
        deployed in Elasticsearch, none at all). A vector of another length is refused by
        the store itself.
        """
        recorded = self.store.models()
        if recorded is None:
            return
        # A query may run on another engine than the one that wrote the index: engines
        # are only allowed when they agree with PyTorch fp32 to a cosine of 0.999, which
        # keeps rankings (docs/speed.md); only the indexer refuses to mix them in the index.
        configured = ModelInfo(
            image_model=self._image_encoder.model_name,
            text_model=self._text_encoder.model_name,
            dims=recorded.dims,
            engine=recorded.engine,
            precision=recorded.precision,
        )
        check_models(recorded, configured)

    def _search(self, vector: np.ndarray, query: SearchQuery) -> list[SearchHit]:
        return self._page(self.store.search(vector, query.k + query.offset, query.folder), query)

    def _page(self, hits: list[SearchHit], query: SearchQuery) -> list[SearchHit]:
        if not hits and self.store.count() == 0:
            raise IndexEmptyError("The index is empty: run `findimage index` first.")
        return hits[query.offset :]
