"""The embedded store: SQLite for documents and vectors, exact cosine search with numpy.

SQLite in WAL mode gives one writer and many reader processes at once, and a killed
writer loses at most the batch it had not committed. Searches run over an in-memory
matrix that is reloaded when another connection (the indexer, say) commits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from bot.documents import (
    Fingerprint,
    GeoPoint,
    ImageDocument,
    ModelInfo,
    SearchHit,
    StoreStatus,
    WriteFailure,
)
from bot.errors import BackendUnavailableError, ModelMismatchError
from bot.stores.base import VectorStore, check_models, cosine_score

DATABASE_NAME = "index.sqlite3"
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    folder TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    taken_at TEXT,
    lat REAL,
    lon REAL,
    indexed_at TEXT NOT NULL,
    vector BLOB NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
"""

_DOCUMENT_COLUMNS = (
    "id, path, name, folder, size, mtime, sha256, width, height, taken_at, lat, lon, indexed_at"
)


@dataclass(frozen=True)
class _Matrix:
    generation: int
    ids: list[str]
    folders: np.ndarray
    vectors: np.ndarray


class EmbeddedStore(VectorStore):
    def __init__(self, data_dir: Path):
        self._path = Path(data_dir) / DATABASE_NAME
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self._path,
                timeout=BUSY_TIMEOUT_SECONDS,
                check_same_thread=False,
                isolation_level=None,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailableError(
                f"Cannot open the index at {self._path} ({exc}): check FINDIMAGE_DATA_DIR."
            ) from exc
        self._lock = threading.RLock()
        self._matrix: _Matrix | None = None

    def models(self) -> ModelInfo | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'models'").fetchone()
        return ModelInfo(**json.loads(row[0])) if row else None

    def record_models(self, models: ModelInfo) -> None:
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'models'").fetchone()
            check_models(ModelInfo(**json.loads(row[0])) if row else None, models)
            if row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('models', ?)",
                    (json.dumps(models.__dict__),),
                )

    def upsert(self, items: Sequence[tuple[ImageDocument, np.ndarray]]) -> list[WriteFailure]:
        if not items:
            return []
        rows = [_to_row(doc, vector) for doc, vector in items]
        with self._write() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO images ({_DOCUMENT_COLUMNS}, vector) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return []

    def delete(self, ids: Sequence[str]) -> list[WriteFailure]:
        if not ids:
            return []
        with self._write() as db:
            db.executemany("DELETE FROM images WHERE id = ?", [(doc_id,) for doc_id in ids])
        return []

    def search(self, vector: np.ndarray, k: int, folder: str | None = None) -> list[SearchHit]:
        matrix = self._current_matrix()
        if not matrix.ids or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != matrix.vectors.shape[1]:
            raise ModelMismatchError(
                f"The query vector has {query.shape[0]} dims but the index holds "
                f"{matrix.vectors.shape[1]}: the models differ."
            )
        cosines = matrix.vectors @ query
        candidates = np.arange(len(matrix.ids))
        wanted = (folder or "").strip("/")
        if wanted:
            inside = (matrix.folders == wanted) | np.char.startswith(matrix.folders, wanted + "/")
            candidates = candidates[inside]
            cosines = cosines[inside]
        if candidates.size == 0:
            return []
        take = min(k, candidates.size)
        top = np.argpartition(-cosines, take - 1)[:take]
        top = top[np.argsort(-cosines[top], kind="stable")]
        documents = self._documents([matrix.ids[candidates[i]] for i in top])
        return [
            SearchHit(document=documents[matrix.ids[candidates[i]]], score=cosine_score(cosines[i]))
            for i in top
            if matrix.ids[candidates[i]] in documents
        ]

    def get(self, doc_id: str) -> tuple[ImageDocument, np.ndarray] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_DOCUMENT_COLUMNS}, vector FROM images WHERE id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            return None
        return _to_document(row[:-1]), np.frombuffer(row[-1], dtype=np.float32).copy()

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def fingerprints(self) -> dict[str, Fingerprint]:
        with self._lock:
            rows = self._db.execute("SELECT id, path, size, mtime, sha256 FROM images").fetchall()
        return {
            doc_id: Fingerprint(path=path, size=size, mtime=mtime, sha256=sha256)
            for doc_id, path, size, mtime, sha256 in rows
        }

    def status(self) -> StoreStatus:
        with self._lock:
            count, last = self._db.execute(
                "SELECT COUNT(*), MAX(indexed_at) FROM images"
            ).fetchone()
        return StoreStatus(
            backend="embedded",
            count=int(count),
            models=self.models(),
            last_indexed_at=datetime.fromisoformat(last) if last else None,
            location=str(self._path),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _generation(self) -> int:
        return int(
            self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        )

    def _current_matrix(self) -> _Matrix:
        with self._lock:
            generation = self._generation()
            if self._matrix is None or self._matrix.generation != generation:
                self._matrix = self._load_matrix()
            return self._matrix

    def _load_matrix(self) -> _Matrix:
        # One read transaction, so the generation matches the rows it goes with.
        self._db.execute("BEGIN")
        try:
            generation = self._generation()
            rows = self._db.execute("SELECT id, folder, vector FROM images").fetchall()
        finally:
            self._db.execute("COMMIT")
        if not rows:
            return _Matrix(generation, [], np.array([], dtype=str), np.zeros((0, 0), np.float32))
        vectors = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32)
        return _Matrix(
            generation=generation,
            ids=[row[0] for row in rows],
            folders=np.array([row[1] for row in rows], dtype=str),
            vectors=vectors.reshape(len(rows), -1),
        )

    def _documents(self, ids: list[str]) -> dict[str, ImageDocument]:
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_DOCUMENT_COLUMNS} FROM images WHERE id IN ({marks})", ids
            ).fetchall()
        return {row[0]: _to_document(row) for row in rows}


def _to_row(doc: ImageDocument, vector: np.ndarray) -> tuple:
    return (
        doc.id,
        doc.path,
        doc.name,
        doc.folder,
        doc.size,
        doc.mtime,
        doc.sha256,
        doc.width,
        doc.height,
        doc.taken_at.isoformat() if doc.taken_at else None,
        doc.gps.lat if doc.gps else None,
        doc.gps.lon if doc.gps else None,
        doc.indexed_at.isoformat(),
        np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
    )


def _to_document(row: Sequence) -> ImageDocument:
    (doc_id, path, name, folder, size, mtime, sha256, width, height, taken, lat, lon, indexed) = row
    return ImageDocument(
        id=doc_id,
        path=path,
        name=name,
        folder=folder,
        size=size,
        mtime=mtime,
        sha256=sha256,
        width=width,
        height=height,
        taken_at=datetime.fromisoformat(taken) if taken else None,
        gps=GeoPoint(lat=lat, lon=lon) if lat is not None and lon is not None else None,
        indexed_at=datetime.fromisoformat(indexed),
    )
