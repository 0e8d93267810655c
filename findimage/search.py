"""The search service shared by the command line and the Slack bot."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from findimage.images import DECODE_MIN_SIDE, DecodedImage, decode_image
from findimage.query import Term
from findimage.stores.base import VectorStore, check_model_names

log = logging.getLogger(__name__)

EMPTY_INDEX = "The index is empty: run `findimage index /path/to/pictures` first."
SAY_WHAT = "Say what to look for, for example: snowy mountain."


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
class SearchRequest:
    """A query, where to look and which page: what every front end hands `SearchService.search`.

    `terms` are the query's parts (findimage/query.py). A picture term's value is the name
    its user knows it by (a file's path on the command line, an upload's name in Slack), and
    `pictures` holds its bytes under that name: they are decoded inside the search.
    """

    terms: tuple[Term, ...]
    k: int
    folder: str | None = None
    offset: int = 0
    filters: Filters = field(default_factory=Filters)
    pictures: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchOutcome:
    """A page of hits and what was searched for them.

    `description` is the query as searched, for headings: its terms written
    back (`2:red circle + like:3f2a9c1b`), each text as the text model read it; `cut_note`
    is the sentence saying a text was cut to fit the model, None when none was.
    """

    hits: list[SearchHit]
    description: str
    cut_note: str | None = None


class PictureError(ImageError):
    """A query picture that cannot be used. The sentence speaks of "that picture"; `name`
    and `reason` let a front end that holds several name the one at fault."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"That picture cannot be used: {reason}.")
        self.name = name
        self.reason = reason


class TextSearch(Protocol):
    """Search by text in one step, where the store embeds the text itself."""

    def by_text(
        self, text: str, k: int, folder: str | None, filters: Filters | None = None
    ) -> list[SearchHit]: ...


class SearchService:
    """Text, pictures or indexed ids in; ranked hits out, whatever the store is.

    `search` is the one way in. The service owns its store: use it in a `with` block, or
    call `close`.
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

    def load_models(self) -> None:
        """Load and warm the local towers now (at a bot's start) rather than on the first
        request; a text model served by Elasticsearch has nothing to load here."""
        for encoder, tower in ((self._image_encoder, "image"), (self._text_encoder, "text")):
            warm = getattr(encoder, "warm", None)
            if warm is not None:
                warm(tower)

    def search(self, request: SearchRequest) -> SearchOutcome:
        """A page of hits for the request's terms: one term alone is searched by its own
        vector; several, by the normalized sum of each term's normalized vector times its
        weight (the indexed pictures named by `like:` are left out of the hits).

        Everything that can be refused without a model is refused first, in this order: an
        empty query, a picture that cannot be decoded, a missing index or one built with
        other models, an id the index does not hold.
        """
        terms = [_required_term(term) for term in request.terms]
        if not terms:
            raise ConfigError(SAY_WHAT)
        # Decoded at the size most models look at, which needs no model to know: a picture
        # that cannot be used is told before any model loads.
        images = {
            term.value: self._decoded(term.value, request.pictures[term.value])
            for term in terms
            if term.kind == "picture"
        }
        self._check_models()
        images = self._at_model_side(images, request.pictures)
        liked = {term.value: self._indexed(term.value) for term in terms if term.kind == "like"}
        # Each text is fitted once, here: the note and the search read the same fitting.
        fitted = {term.value: self._fit(term.value) for term in terms if term.kind == "text"}
        searched = [
            replace(term, value=fitted[term.value].text) if term.kind == "text" else term
            for term in terms
        ]
        cut = [fit for fit in fitted.values() if fit.cut]
        description = _written(searched)
        note = _cut_note(cut[0].max_tokens, description) if cut else None
        if self._text_search is not None and _alone_unweighted(searched, "text"):
            hits = self._by_text_in_store(self._text_search, searched[0].value, request)
        else:
            vector = self._vector(searched, images, liked)
            hits = self._nearest(vector, {doc_id for doc_id, _ in liked.values()}, request)
        return SearchOutcome(hits, description, note)

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

    def _vector(
        self,
        terms: Sequence[Term],
        images: Mapping[str, DecodedImage],
        liked: Mapping[str, tuple[str, np.ndarray]],
    ) -> np.ndarray:
        """The query's vector: a term alone, as its model gives it; several, summed."""
        texts = [term.value for term in terms if term.kind == "text"]
        text_vectors = iter(self._text_encoder.encode_texts(texts) if texts else [])
        shown = [images[term.value].image for term in terms if term.kind == "picture"]
        image_vectors = iter(self._image_encoder.encode_images(shown) if shown else [])
        vectors: list[np.ndarray] = []
        for term in terms:
            if term.kind == "text":
                vectors.append(next(text_vectors))
            elif term.kind == "picture":
                vectors.append(next(image_vectors))
            else:
                vectors.append(liked[term.value][1])
        if len(terms) == 1 and terms[0].weight == 1.0:
            # One term alone is searched as it always was.
            return np.asarray(vectors[0])
        total = np.zeros_like(vectors[0], dtype=np.float32)
        for term, vector in zip(terms, vectors, strict=True):
            total += term.weight * _normalized(np.asarray(vector, dtype=np.float32))
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise ConfigError(
                "The terms cancel each other out: change a weight, or leave a term out."
            )
        return np.asarray(total / norm)

    def _fit(self, text: str) -> FittedText:
        """The text as the text model will read it, cut to its length if needed."""
        if isinstance(self._text_encoder, TextFitter):
            return self._text_encoder.fit_text(text)
        return FittedText(text, cut=False)

    def _decoded(self, name: str, data: bytes, side: int = DECODE_MIN_SIDE) -> DecodedImage:
        """A query picture's image, its short side about `side` pixels; one sentence when the
        picture cannot be used."""
        try:
            return decode_image(data, self._max_file_bytes, min_side=side)
        except ImageError as exc:
            raise PictureError(name, str(exc)) from exc

    def _at_model_side(
        self, images: dict[str, DecodedImage], pictures: Mapping[str, bytes]
    ) -> dict[str, DecodedImage]:
        """The images decoded again at the image model's own side when it is not the one they
        were first decoded at, so that a query picture is seen as the indexer saw its copy."""
        side = self._image_encoder.input_side if images else DECODE_MIN_SIDE
        if side == DECODE_MIN_SIDE:
            return images
        return {name: self._decoded(name, pictures[name], side) for name in images}

    def _by_text_in_store(
        self, text_search: TextSearch, text: str, request: SearchRequest
    ) -> list[SearchHit]:
        """Hits from a store that embeds the text itself, in one round trip."""
        hits = self._checked(
            lambda: text_search.by_text(
                text, request.k + request.offset, request.folder, request.filters
            )
        )
        return hits[request.offset : request.offset + request.k]

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

    def _nearest(
        self, vector: np.ndarray, left_out: set[str], request: SearchRequest
    ) -> list[SearchHit]:
        """The request's page of hits for `vector`, with the pictures in `left_out` taken out."""
        wanted = request.k + request.offset + len(left_out)
        hits = self._checked(
            lambda: self._store.search(vector, wanted, request.folder, request.filters)
        )
        others = [hit for hit in hits if hit.document.id not in left_out]
        return others[request.offset : request.offset + request.k]

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


def _normalized(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _required_term(term: Term) -> Term:
    """A text term without surrounding blanks; an empty one gets a sentence saying what to type."""
    if term.kind != "text":
        return term
    text = term.value.strip()
    if not text:
        raise ConfigError(SAY_WHAT)
    return replace(term, value=text)


def _alone_unweighted(terms: Sequence[Term], kind: str) -> bool:
    return len(terms) == 1 and terms[0].kind == kind and terms[0].weight == 1.0


def _written(terms: Sequence[Term]) -> str:
    """Terms written back the way a query is typed: `2:red circle + like:3f2a - people`."""
    parts: list[str] = []
    for term in terms:
        if parts or term.weight < 0:
            parts.append("-" if term.weight < 0 else "+")
        weight = abs(term.weight)
        value = f"like:{term.value}" if term.kind == "like" else term.value
        parts.append(value if weight == 1.0 else f"{weight:g}:{value}")
    return " ".join(parts)


def _cut_note(max_tokens: int | None, searched: str) -> str:
    """The sentence that says a query was cut, for the CLI and for Slack answers."""
    return (
        f"the description was too long for the text model ({max_tokens} tokens at most), "
        f"so I searched for “{searched}”."
    )
