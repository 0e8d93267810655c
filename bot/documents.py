"""The records that flow between the indexer, the stores, the search service and the renderers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime


def document_id(relative_path: str) -> str:
    """A stable id for a picture: the same relative path always gives the same id."""
    return hashlib.sha1(relative_path.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lon: float


@dataclass(frozen=True)
class ImageDocument:
    """What the index knows about one picture. `path` is relative to the library root, with '/'."""

    id: str
    path: str
    name: str
    folder: str
    size: int
    mtime: float
    sha256: str
    width: int
    height: int
    indexed_at: datetime
    taken_at: datetime | None = None
    gps: GeoPoint | None = None


@dataclass(frozen=True)
class Fingerprint:
    """Enough to tell whether a file changed since it was indexed."""

    path: str
    size: int
    mtime: float
    sha256: str


@dataclass(frozen=True)
class WriteFailure:
    """A document the store could not write or remove, with the store's reason."""

    doc_id: str
    reason: str


@dataclass(frozen=True)
class SearchHit:
    """One result: score is in [0, 1], (1 + cosine) / 2, higher is closer."""

    document: ImageDocument
    score: float


@dataclass(frozen=True)
class ModelInfo:
    """The models whose vectors an index holds; an index never mixes two.

    `engine` and `precision` say what ran the image model when the vectors were written
    (indexes written before they were recorded were all PyTorch fp32).
    """

    image_model: str
    text_model: str
    dims: int
    engine: str = "torch"
    precision: str = "fp32"


@dataclass(frozen=True)
class StoreStatus:
    backend: str
    count: int
    models: ModelInfo | None
    last_indexed_at: datetime | None
    location: str
    # The absolute folder the index was built from; result paths are relative to it.
    library_root: str | None = None
