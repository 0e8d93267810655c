"""Index documents for tests: one factory, so a change to ImageDocument is made here once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from findimage.documents import ImageDocument, document_id


def make_document(path: str, **changes: Any) -> ImageDocument:
    """The document for a picture at `path` (its id, name and folder follow from it); the
    other fields are plain values unless `changes` names them."""
    folder, _, name = path.rpartition("/")
    document = ImageDocument(
        id=document_id(path),
        path=path,
        name=name,
        folder=folder,
        size=100,
        mtime=1.5,
        sha256="0" * 64,
        width=10,
        height=20,
        indexed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    return replace(document, **changes)
