"""The search service shared by the command line and the Slack bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bot.documents import ModelInfo, SearchHit, StoreStatus
from bot.encoders import ImageEncoder, TextEncoder
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


class SearchService:
    """Text, picture or indexed id in; ranked hits out, whatever the store is."""

    def __init__(
        self,
        store: VectorStore,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        max_file_bytes: int,
    ):
        self.store = store
        self._image_encoder = image_encoder
        self._text_encoder = text_encoder
        self._max_file_bytes = max_file_bytes

    @property
    def models(self) -> ModelInfo:
        return ModelInfo(
            image_model=self._image_encoder.model_name,
            text_model=self._text_encoder.model_name,
            dims=self._image_encoder.dims,
        )

    def by_text(self, text: str, query: SearchQuery) -> list[SearchHit]:
        text = text.strip()
        if not text:
            raise ConfigError("Say what to look for, for example: snowy mountain.")
        self._check_models()
        vector = self._text_encoder.encode_texts([text])[0]
        return self._search(vector, query)

    def by_image(self, data: bytes, query: SearchQuery) -> list[SearchHit]:
        try:
            decoded = decode_image(data, self._max_file_bytes)
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

    def _check_models(self) -> None:
        check_models(self.store.models(), self.models)

    def _search(self, vector: np.ndarray, query: SearchQuery) -> list[SearchHit]:
        hits = self.store.search(vector, query.k + query.offset, query.folder)
        if not hits and self.store.count() == 0:
            raise IndexEmptyError("The index is empty: run `findimage index` first.")
        return hits[query.offset :]
