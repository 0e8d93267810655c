"""The search service shared by the command line and the Slack bot."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from findimage.documents import ImageDocument, SearchHit, StoreStatus
from findimage.encoders import FittedText, ImageEncoder, RemoteTextEncoder, TextEncoder, TextFitter
from findimage.errors import (
    ConfigError,
    ImageError,
    IndexChangedError,
    IndexEmptyError,
    NotFoundError,
)
from findimage.filters import Filters
from findimage.images import DecodedImage, decode_image
from findimage.query import Term
from findimage.stores.base import VectorStore, check_model_names

log = logging.getLogger(__name__)

EMPTY_INDEX = "The index is empty: run `findimage index` first."


OUTSIDE_FOLDER = (
    "A folder to search must be inside the library, written from its root "
    "like marketing/2024, without '..'."
)


def library_folder(written: str) -> str:
    """A folder as written after in: or --in, as the store names it: 'a/./b/' -> 'a/b'.

    '..' is refused rather than resolved: nothing outside the library may be asked for, and
    a path that climbs out and back in is a typo more often than not.
    """
    parts = [part for part in written.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ConfigError(OUTSIDE_FOLDER)
    return "/".join(parts)


@dataclass(frozen=True)
class SearchQuery:
    """Where to look and how many results; `offset` pages through them."""

    k: int
    folder: str | None = None
    offset: int = 0
    filters: Filters = field(default_factory=Filters)


class TextSearch(Protocol):
    """Search by text in one step, where the store embeds the text itself."""

    def by_text(
        self, text: str, k: int, folder: str | None, filters: Filters | None = None
    ) -> list[SearchHit]: ...


class SearchService:
    """Text, picture or indexed id in; ranked hits out, whatever the store is.

    The service owns its store: use it in a `with` block, or call `close`.
    """

    def __init__(
        self,
        store: VectorStore,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        max_file_bytes: int,
        text_search: TextSearch | None = None,
    ):
        """With `text_search`, text queries go to it instead of `text_encoder` plus the store."""
        self._store = store
        self._image_encoder = image_encoder
        self._text_encoder = text_encoder
        self._max_file_bytes = max_file_bytes
        self._text_search = text_search

    def __enter__(self) -> SearchService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._store.close()

    def fit_text(self, text: str) -> FittedText:
        """The query as the text model will read it, cut to its length if needed."""
        text = _required(text)
        if isinstance(self._text_encoder, TextFitter):
            return self._text_encoder.fit_text(text)
        return FittedText(text, cut=False)

    def load_models(self) -> None:
        """Load and warm the local towers now (at a bot's start) rather than on the first
        request; a text model served by Elasticsearch has nothing to load here."""
        for encoder, tower in ((self._image_encoder, "image"), (self._text_encoder, "text")):
            warm = getattr(encoder, "warm", None)
            if warm is not None:
                warm(tower)

    def by_text(self, text: str, query: SearchQuery) -> list[SearchHit]:
        """Hits for `text`, first cut to what the text model reads (see `fit_text`)."""
        _required(text)
        # A missing or refused index answers before the tokenizer or a model loads.
        self._check_models()
        text = self.fit_text(text).text
        if self._text_search is not None:
            text_search = self._text_search
            hits = self._checked(
                lambda: text_search.by_text(
                    text, query.k + query.offset, query.folder, query.filters
                )
            )
            return self._page(hits, query)
        vector = self._text_encoder.encode_texts([text])[0]
        return self._search(vector, query)

    def by_image(self, data: bytes, query: SearchQuery) -> list[SearchHit]:
        return self.by_picture(self.decode_picture(data), query)

    def decode_picture(self, data: bytes) -> DecodedImage:
        """A query picture's bytes, decoded as the image model needs them; one sentence when
        they cannot be."""
        try:
            return decode_image(data, self._max_file_bytes, min_side=self._image_encoder.input_side)
        except ImageError as exc:
            raise ImageError(f"That picture cannot be used: {exc}.") from exc

    def by_picture(self, picture: DecodedImage, query: SearchQuery) -> list[SearchHit]:
        """Like `by_image`, for a picture the caller decoded (and vouched for) itself."""
        self._check_models()
        vector = self._image_encoder.encode_images([picture.image])[0]
        return self._search(vector, query)

    def like(self, doc_id: str, query: SearchQuery) -> list[SearchHit]:
        """Pictures like an indexed one (by its id or the start of it), from its stored
        vector, without the picture itself."""
        self._check_models()
        found_id, vector = self._indexed(doc_id)
        return self._search_without(vector, {found_id}, query)

    def by_terms(
        self,
        terms: Sequence[Term],
        query: SearchQuery,
        pictures: Mapping[str, DecodedImage] | None = None,
    ) -> list[SearchHit]:
        """Hits for a weighted sum of terms (findimage/query.py): the normalized sum of each term's
        normalized vector times its weight. `pictures` holds the decoded picture of each
        picture term, by its value.

        The text terms are embedded in one call (one `_infer` for a model in Elasticsearch);
        the indexed pictures named by `like:` are left out of the results.
        """
        if len(terms) == 1 and terms[0].weight == 1.0:
            # One term alone is searched as it always was.
            only = terms[0]
            if only.kind == "text":
                return self.by_text(only.value, query)
            if only.kind == "picture":
                return self.by_picture((pictures or {})[only.value], query)
            return self.like(only.value, query)
        self._check_models()
        # The indexed pictures first: a wrong id is told before any model loads.
        liked = {term.value: self._indexed(term.value) for term in terms if term.kind == "like"}
        texts = [self.fit_text(term.value).text for term in terms if term.kind == "text"]
        text_vectors = iter(self._text_encoder.encode_texts(texts) if texts else [])
        shown = [(pictures or {})[term.value] for term in terms if term.kind == "picture"]
        picture_vectors = iter(
            self._image_encoder.encode_images([picture.image for picture in shown]) if shown else []
        )
        total: np.ndarray | None = None
        for term in terms:
            if term.kind == "text":
                vector = next(text_vectors)
            elif term.kind == "picture":
                vector = next(picture_vectors)
            else:
                vector = liked[term.value][1]
            part = term.weight * _normalized(np.asarray(vector, dtype=np.float32))
            total = part if total is None else total + part
        if total is None:
            raise ConfigError("Say what to look for, for example: snowy mountain.")
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise ConfigError(
                "The terms cancel each other out: change a weight, or leave a term out."
            )
        return self._search_without(total / norm, {doc_id for doc_id, _ in liked.values()}, query)

    def status(self) -> StoreStatus:
        return self._store.status()

    def library_root(self) -> str | None:
        """The absolute folder the index was built from, when it recorded one."""
        return self._store.library_root()

    def document(self, doc_id: str) -> ImageDocument | None:
        """The indexed picture with this id, if the index holds it."""
        found = self._store.get(doc_id)
        return found[0] if found else None

    def text_model_problem(self) -> str | None:
        """One plain sentence when text search cannot work now, e.g. a remote model is stopped."""
        if isinstance(self._text_encoder, RemoteTextEncoder):
            return self._text_encoder.problem()
        return None

    def _check_models(self) -> None:
        """Refuse a missing index, and one built with other models, before any model loads.

        By name: asking a model for its dims would load it, where a text query needs only the
        text model (and with a model deployed in Elasticsearch, none at all).
        """
        recorded = self._store.models()
        if recorded is None or self._store.empty_here():
            raise IndexEmptyError(EMPTY_INDEX)
        check_model_names(recorded, self._image_encoder.model_name, self._text_encoder.model_name)

    def _indexed(self, doc_id: str) -> tuple[str, np.ndarray]:
        """The full id and stored vector of the picture an id, or the start of one, names."""
        found = self._store.get(doc_id)
        if found is not None:
            return doc_id, found[1]
        candidates = self._store.ids_starting_with(doc_id, 2) if doc_id else []
        if len(candidates) > 1:
            raise ConfigError(
                f"Several pictures have an id starting with {doc_id}: give more of the id."
            )
        found = self._store.get(candidates[0]) if candidates else None
        if found is None and self._store.count() == 0:
            raise IndexEmptyError(EMPTY_INDEX)
        if found is None:
            raise NotFoundError(f"No picture with id {doc_id} is in the index.")
        return candidates[0], found[1]

    def _search_without(
        self, vector: np.ndarray, left_out: set[str], query: SearchQuery
    ) -> list[SearchHit]:
        """A page of hits for `vector` with the pictures in `left_out` taken out."""
        wanted = query.k + query.offset + len(left_out)
        hits = self._checked(
            lambda: self._store.search(vector, wanted, query.folder, query.filters)
        )
        others = [hit for hit in hits if hit.document.id not in left_out]
        return others[query.offset : query.offset + query.k]

    def _search(self, vector: np.ndarray, query: SearchQuery) -> list[SearchHit]:
        wanted = query.k + query.offset
        hits = self._checked(
            lambda: self._store.search(vector, wanted, query.folder, query.filters)
        )
        return self._page(hits, query)

    def _checked(self, search: Callable[[], list[SearchHit]]) -> list[SearchHit]:
        """Run a search; when the store finds the index changed models under it (a rebuild by
        another process), check the models again, which refuses with the same sentence a
        fresh process would give, or, models unchanged, search once more.

        A search is one request: only one that finds nothing asks whether the index is
        empty, to say so rather than "no pictures found"."""
        try:
            hits = search()
        except IndexChangedError:
            self._check_models()
            hits = search()
        if not hits and self._store.count() == 0:
            raise IndexEmptyError(EMPTY_INDEX)
        return hits

    def _page(self, hits: list[SearchHit], query: SearchQuery) -> list[SearchHit]:
        return hits[query.offset :]


def _normalized(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _required(text: str) -> str:
    """The query without surrounding blanks; an empty one gets a sentence saying what to type."""
    text = text.strip()
    if not text:
        raise ConfigError("Say what to look for, for example: snowy mountain.")
    return text


def cut_note(fitted: FittedText) -> str:
    """The sentence that says a query was cut, for the CLI and for Slack answers."""
    return (
        f"the description was too long for the text model ({fitted.max_tokens} tokens at most), "
        f"so I searched for “{fitted.text}”."
    )
