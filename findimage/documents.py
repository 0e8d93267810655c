"""The records that flow between the indexer, the stores, the search service and the renderers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def document_id(relative_path: str) -> str:
    """A stable id for a picture: the same relative path always gives the same id."""
    return hashlib.sha1(relative_path.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lon: float


# The fields of a document's record (`ImageDocument.to_record`), in the order stores keep them.
RECORD_FIELDS = (
    "id",
    "path",
    "name",
    "folder",
    "size",
    "mtime",
    "sha256",
    "width",
    "height",
    "taken_at",
    "gps",
    "indexed_at",
)


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

    def to_record(self) -> dict[str, Any]:
        """The document as plain JSON-ready data: what the stores write and `--json` prints."""
        return {
            "id": self.id,
            "path": self.path,
            "name": self.name,
            "folder": self.folder,
            "size": self.size,
            "mtime": self.mtime,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "gps": {"lat": self.gps.lat, "lon": self.gps.lon} if self.gps else None,
            "indexed_at": self.indexed_at.isoformat(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ImageDocument:
        """The document `to_record` wrote; KeyError, TypeError or ValueError when damaged."""
        taken, gps = record.get("taken_at"), record.get("gps")
        return cls(
            id=str(record["id"]),
            path=str(record["path"]),
            name=str(record["name"]),
            folder=str(record["folder"]),
            size=int(record["size"]),
            mtime=float(record["mtime"]),
            sha256=str(record["sha256"]),
            width=int(record["width"]),
            height=int(record["height"]),
            taken_at=datetime.fromisoformat(taken) if taken else None,
            gps=GeoPoint(lat=float(gps["lat"]), lon=float(gps["lon"])) if gps else None,
            indexed_at=datetime.fromisoformat(record["indexed_at"]),
        )


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
    # What the workers of `findimage index --shard K/N` last reported (Elasticsearch only).
    shards: tuple[ShardReport, ...] = ()


@dataclass(frozen=True)
class ShardReport:
    """What one shard's worker last said about its run into `index` (the alias, or a
    rebuild's new index): pictures written in its current run, and whether it finished."""

    index: str
    shard: int
    shards: int
    image_model: str
    text_model: str
    written: int
    done: bool
    updated_at: datetime

    @property
    def label(self) -> str:
        return f"{self.shard}/{self.shards}"


@dataclass(frozen=True)
class Skipped:
    """A file an indexing run left out, with the reason to show."""

    path: str
    reason: str


@dataclass
class IndexReport:
    """What an indexing run did (or, with `dry_run`, would do)."""

    indexed: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    dry_run: bool = False
    to_index: list[str] = field(default_factory=list)
    to_delete: list[str] = field(default_factory=list)
    # Some folder or file could not be read: what the index had for it was kept as it was.
    incomplete: bool = False
