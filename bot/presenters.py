"""Plain-data views of results, status and index reports, shared by the CLI and the bot."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from bot.documents import ImageDocument, SearchHit, StoreStatus
from indexer.indexer import IndexReport


def document_dict(doc: ImageDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "path": doc.path,
        "name": doc.name,
        "folder": doc.folder,
        "size": doc.size,
        "mtime": doc.mtime,
        "sha256": doc.sha256,
        "width": doc.width,
        "height": doc.height,
        "taken_at": _iso(doc.taken_at),
        "gps": {"lat": doc.gps.lat, "lon": doc.gps.lon} if doc.gps else None,
        "indexed_at": _iso(doc.indexed_at),
    }


def hit_dict(hit: SearchHit, root: str | None = None) -> dict[str, Any]:
    """The document, its score, and `location`: its absolute path when the library is known."""
    location = str(Path(root) / hit.document.path) if root else None
    return {**document_dict(hit.document), "score": round(hit.score, 6), "location": location}


def results_dict(hits: list[SearchHit], root: str | None = None) -> dict[str, Any]:
    return {"results": [hit_dict(hit, root) for hit in hits]}


def status_dict(status: StoreStatus) -> dict[str, Any]:
    models = status.models
    return {
        "backend": status.backend,
        "count": status.count,
        "image_model": models.image_model if models else None,
        "text_model": models.text_model if models else None,
        "dims": models.dims if models else None,
        "image_engine": f"{models.engine} {models.precision}" if models else None,
        "last_indexed_at": _iso(status.last_indexed_at),
        "location": status.location,
        "library": status.library_root,
    }


def report_dict(report: IndexReport) -> dict[str, Any]:
    result: dict[str, Any] = {
        "indexed": report.indexed,
        "unchanged": report.unchanged,
        "deleted": report.deleted,
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
    }
    if report.dry_run:
        result.update(dry_run=True, to_index=report.to_index, to_delete=report.to_delete)
    return result


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
