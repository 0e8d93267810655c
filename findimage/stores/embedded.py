"""The embedded store: SQLite for documents and vectors, exact cosine search with numpy.

SQLite in WAL mode gives one writer and many reader processes at once, and a killed
writer loses at most the batch it had not committed. Searches run over an in-memory
matrix. Each commit bumps a generation number and stamps the rows it wrote (and, in
`removed`, the ids it deleted) with it, so a search that finds the generation moved reads
only what changed since, not the whole index.

Reading never writes: a process that only searches opens the file read-only, so it needs
neither write access nor free space. A damaged file (not a database, or one SQLite finds
corrupt, or unreadable findimage records) is reported as such by every command; `findimage
index` moves it aside (`index.sqlite3.corrupt-<time>`) and builds the index again. A row
whose vector is damaged is left out of searches and embedded again by the next run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.dtypes import StringDType
from threadpoolctl import ThreadpoolController

from findimage.documents import (
    RECORD_FIELDS,
    Fingerprint,
    ImageDocument,
    ModelInfo,
    SearchHit,
    StoreStatus,
    WriteFailure,
)
from findimage.errors import BackendUnavailableError, ModelMismatchError
from findimage.filters import EARTH_RADIUS_KM, Filters, distance_km, utc_timestamp
from findimage.stores.base import VectorStore, check_models, cosine_score

DATABASE_NAME = "index.sqlite3"
# Held (flock) by the one indexing run writing the index; it holds that run's pid and host.
LOCK_NAME = "index.lock"
SCHEMA_VERSION = 1
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
    vector BLOB NOT NULL,
    generation INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_generation ON images (generation);
CREATE TABLE IF NOT EXISTS removed (id TEXT PRIMARY KEY, generation INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS removed_by_generation ON removed (generation);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
"""

log = logging.getLogger(__name__)

_REFRESH_CHUNK_ROWS = 4_096
# SQLite's result codes for a file that is not, or no longer, a sound database.
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
# What SQLite answers a reader that cannot create the WAL index's shared-memory file.
_CANNOT_CREATE_CODES = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL")
_BLAS = ThreadpoolController()

# The document's columns: its record's fields, with `gps` stored as lat and lon.
_COLUMNS = tuple(
    column for name in RECORD_FIELDS for column in (("lat", "lon") if name == "gps" else (name,))
)
_DOCUMENT_COLUMNS = ", ".join(_COLUMNS)


class IndexDamagedError(BackendUnavailableError):
    """The index file is damaged: `findimage index` moves it aside and builds it again."""


class _VectorIndex:
    """The index's vectors in memory, patched in place as generations go by.

    Rows are kept dense: a removed row is filled with the last one, so a search scans
    exactly `len(ids)` rows and an update costs what changed, not the whole index.

    Vectors stay float32 and the scan is one BLAS matrix-vector product: measured at 1M x
    512 (BENCHMARKS.md), float16 with a float32 re-rank halves the memory but numpy has no
    float16 BLAS, so its scan is tens of times slower. `scan_threads` caps BLAS's threads
    for the scan, so it does not fight the model's threads for the cores.
    """

    def __init__(self, scan_threads: int | None = None) -> None:
        self.scan_threads = scan_threads
        self.generation = -1
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}
        self._folders = np.empty(0, dtype=StringDType())
        self._vectors = np.zeros((0, 0), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._ids)

    def remove(self, removed: Iterable[str]) -> None:
        for doc_id in removed:
            self._remove(doc_id)

    def add(self, rows: list[tuple[str, str, bytes]], expected: int, dims: int) -> int:
        """Put rows in; `expected` rows in all are coming, so room is made once for them.

        A row whose vector is not `dims` finite numbers is damaged: it is left out (and
        taken out, if an earlier version of it was in). Returns how many were.
        """
        if not rows:
            return 0
        sound = [row for row in rows if len(row[2]) == dims * 4]
        self.remove(row[0] for row in rows if len(row[2]) != dims * 4)
        damaged = len(rows) - len(sound)
        if not sound:
            return damaged
        self._reserve(len(self._ids) + expected, dims)
        added = np.frombuffer(b"".join(row[2] for row in sound), dtype=np.float32)
        added = added.reshape(len(sound), dims)
        for (doc_id, folder, _), vector in zip(sound, added, strict=True):
            if np.isfinite(vector).all():
                self._put(doc_id, folder, vector)
            else:
                self._remove(doc_id)
                damaged += 1
        return damaged

    def search(
        self, query: np.ndarray, k: int, folder: str | None, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ids and cosines of the k closest rows, best first; with `allowed`, only
        among those ids."""
        count = len(self._ids)
        if count == 0 or k <= 0:
            return []
        if query.shape[0] != self._vectors.shape[1]:
            raise ModelMismatchError(
                f"The query vector has {query.shape[0]} dims but the index holds "
                f"{self._vectors.shape[1]}: the models differ."
            )
        with _blas_threads(self.scan_threads):
            cosines = self._vectors[:count] @ query
        rows = np.arange(count)
        wanted = (folder or "").strip("/")
        if wanted:
            folders = self._folders[:count]
            inside = (folders == wanted) | np.strings.startswith(folders, wanted + "/")
            rows, cosines = rows[inside], cosines[inside]
        if allowed is not None:
            ids = self._ids
            kept = np.fromiter((ids[row] in allowed for row in rows), dtype=bool, count=rows.size)
            rows, cosines = rows[kept], cosines[kept]
        if rows.size == 0:
            return []
        take = min(k, rows.size)
        top = np.argpartition(-cosines, take - 1)[:take]
        top = top[np.argsort(-cosines[top], kind="stable")]
        return [(self._ids[rows[i]], float(cosines[i])) for i in top]

    def _remove(self, doc_id: str) -> None:
        row = self._row_of.pop(doc_id, None)
        if row is None:
            return
        last = len(self._ids) - 1
        if row != last:
            moved = self._ids[last]
            self._ids[row] = moved
            self._row_of[moved] = row
            self._vectors[row] = self._vectors[last]
            self._folders[row] = self._folders[last]
        self._ids.pop()

    def _put(self, doc_id: str, folder: str, vector: np.ndarray) -> None:
        row = self._row_of.get(doc_id)
        if row is None:
            row = len(self._ids)
            self._reserve(row + 1, vector.shape[0])
            self._ids.append(doc_id)
            self._row_of[doc_id] = row
        self._vectors[row] = vector
        self._folders[row] = folder

    def _reserve(self, rows: int, dims: int) -> None:
        """Room for `rows`: exactly that on the first load, then an eighth more each time.

        An eighth, not double: at 1M x 512 doubling would leave up to 2 GB unused for good.
        """
        if rows <= self._vectors.shape[0]:
            return
        current = self._vectors.shape[0]
        capacity = rows if current == 0 else max(rows, current + current // 8, 1024)
        count = len(self._ids)
        vectors = np.zeros((capacity, dims), dtype=np.float32)
        if count:
            vectors[:count] = self._vectors[:count]
        folders = np.empty(capacity, dtype=StringDType())
        folders[:count] = self._folders[:count]
        self._vectors, self._folders = vectors, folders


@contextmanager
def _blas_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    with _BLAS.limit(limits=threads, user_api="blas"):
        yield


class EmbeddedStore(VectorStore):
    """The index in `data_dir`, created by the first write; until then it reads as empty.

    With `repair`, as `findimage index` opens it, a damaged index is moved aside and a new
    one is built in its place, and an existing one is opened for writing at once; without,
    a damaged index is reported by every use, and reading opens the file read-only.
    """

    def __init__(self, data_dir: Path, scan_threads: int | None = None, repair: bool = False):
        self._path = Path(data_dir).absolute() / DATABASE_NAME
        self._db: sqlite3.Connection | None = None
        self._writable = False
        # Which file `_db` opened (device and inode), to notice it was replaced since.
        self._opened: tuple[int, int] | None = None
        self._lock = threading.RLock()
        self._vectors = _VectorIndex(scan_threads)
        # Open an existing index now, so a damaged or foreign one is reported at once.
        try:
            self._reader()
            if repair:
                self._check_sound()
        except IndexDamagedError as damage:
            if not repair:
                raise
            self._set_aside(damage)
        if repair and self._db is not None:
            # An indexing run finds out now, before any model loads, that it cannot write.
            self._writer()

    def _reader(self) -> sqlite3.Connection | None:
        """The open index, or None while there is none: reading never creates one, and
        opens the file read-only.

        Checked on every read, so a bot started before the first `findimage index` sees the
        index once that run has created it.
        """
        with self._lock:
            if self._db is None and self._path.exists():
                try:
                    self._db = self._connect(create=False)
                except _NotCreatedYet:
                    return None
                self._writable = False
            return self._db

    def _writer(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is not None and not self._writable:
                self._db.close()
                self._db = None
            if self._db is None:
                self._db = self._connect(create=True)
                self._writable = True
            return self._db

    def reload(self) -> None:
        """Follow the index file: one deleted or replaced since it was opened (an index made
        again, with other models perhaps) is closed, so the next use opens what is there now
        and checks its models, instead of writing on into a file nobody reads."""
        with self._lock:
            if self._db is not None and self._opened != _file_identity(self._path):
                self._db.close()
                self._db = None
                self._vectors = _VectorIndex(self._vectors.scan_threads)

    def _connect(self, create: bool) -> sqlite3.Connection:
        """Read-write (creating the file and its tables), or read-only, writing nothing."""
        try:
            if create:
                self._path.parent.mkdir(parents=True, exist_ok=True)
            db = self._open(f"mode={'rwc' if create else 'ro'}")
            try:
                if create:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=NORMAL")
                    self._create_or_check_schema(db)
                else:
                    db = self._checked_read_only(db)
                self._opened = _file_identity(self._path)
            except BaseException:
                db.close()
                raise
        except sqlite3.Error as exc:
            if _is_damage(exc):
                raise self._damaged(str(exc)) from exc
            raise BackendUnavailableError(
                f"Cannot open the index at {self._path} ({exc}): {_cause(exc)}, then run again."
            ) from exc
        except OSError as exc:
            raise BackendUnavailableError(
                f"Cannot open the index at {self._path} ({exc}): check FINDIMAGE_DATA_DIR."
            ) from exc
        return db

    def _open(self, options: str) -> sqlite3.Connection:
        return sqlite3.connect(
            f"{self._path.as_uri()}?{options}",
            uri=True,
            timeout=BUSY_TIMEOUT_SECONDS,
            check_same_thread=False,
            isolation_level=None,
        )

    def _checked_read_only(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """The read-only connection, its schema checked. Reading a WAL index makes SQLite
        create its shared-memory file beside it; where nothing can be created (a read-only
        folder, a full disk) no writer can be at work either, so the file is read as
        immutable (https://www.sqlite.org/wal.html#readonly)."""
        try:
            self._check_schema(db)
            return db
        except sqlite3.OperationalError as exc:
            if not getattr(exc, "sqlite_errorname", "").startswith(_CANNOT_CREATE_CODES):
                raise
            log.info("reading %s as immutable: %s", self._path, exc)
        db.close()
        db = self._open("mode=ro&immutable=1")
        try:
            self._check_schema(db)
        except BaseException:
            db.close()
            raise
        return db

    def _check_schema(self, db: sqlite3.Connection) -> None:
        # One read transaction, one snapshot: read one after the other, a first write that
        # commits between the two reads would show its tables without its version.
        db.execute("BEGIN")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        finally:
            db.execute("COMMIT")
        if tables and version != SCHEMA_VERSION:
            raise BackendUnavailableError(
                f"The index at {self._path} was made by another version of findimage: "
                "delete that folder and run `findimage index` again."
            )
        if tables and not {"meta", "images", "removed"} <= tables:
            raise self._damaged("tables are missing")
        if not tables:
            # A first run is creating it right now: read as empty until it has.
            raise _NotCreatedYet

    def _create_or_check_schema(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if tables and version != SCHEMA_VERSION:
                raise BackendUnavailableError(
                    f"The index at {self._path} was made by another version of findimage: "
                    "delete that folder and run `findimage index` again."
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def writing(self, shard: tuple[int, int] | None = None) -> Iterator[None]:
        """An exclusive lock on `index.lock` beside the index for the run's whole duration.

        flock, not SQLite's own locks: a run reads (the recorded library, what is indexed)
        long before it writes, and a --replace must not interleave with another run between
        the two. The kernel drops the lock when its process dies, even by SIGKILL, so no
        stale lock is ever left to clear by hand.
        """
        path = self._path.parent / LOCK_NAME
        created = not path.parent.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise BackendUnavailableError(
                f"Cannot lock the index at {path} ({exc.strerror or exc}): check that "
                "FINDIMAGE_DATA_DIR can be written, then run again."
            ) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
                who = f"pid {holder[0]} on {holder[1]}" if len(holder) == 2 else "another process"
                raise BackendUnavailableError(
                    f"Another findimage run ({who}) is writing the index at {self._path}: "
                    "wait for it to finish, then run again."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
            yield
        finally:
            if created and not self._path.exists():
                # A first run that wrote nothing (its model failed to load) leaves no folder.
                path.unlink(missing_ok=True)
                with suppress(OSError):
                    path.parent.rmdir()
            os.close(fd)  # which releases the lock

    def _damaged(self, detail: str) -> IndexDamagedError:
        return IndexDamagedError(
            f"The index at {self._path} is damaged ({detail}): run `findimage index` to move "
            "it aside and build it again."
        )

    def _check_sound(self) -> None:
        """What `findimage index` checks before writing: SQLite's own check of the file, and
        findimage's records in it. `quick_check` reads the whole file once: measured about
        as long as the run's own listing of the index (1.6 s for 830 MB, 200k rows)."""
        with self._lock:
            db = self._reader()
            if db is None:
                return
            try:
                verdict = [row[0] for row in db.execute("PRAGMA quick_check")]
            except sqlite3.DatabaseError as exc:
                raise self._damaged(str(exc)) from exc
        if verdict != ["ok"]:
            raise self._damaged(verdict[0])
        self.models()

    def _set_aside(self, damage: IndexDamagedError) -> None:
        """Move the damaged file (and its write-ahead log) aside, for whoever wants to look
        at it; the next write builds a new index in its place."""
        self.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self._path.with_name(f"{self._path.name}.corrupt-{stamp}")
        os.replace(self._path, aside)
        wal = self._path.with_name(f"{self._path.name}-wal")
        if wal.exists():
            os.replace(wal, aside.with_name(f"{aside.name}-wal"))
        self._path.with_name(f"{self._path.name}-shm").unlink(missing_ok=True)
        log.warning("%s Moved it to %s; building the index again.", damage, aside)

    def models(self) -> ModelInfo | None:
        value = self._meta("models")
        return self._read_models(value) if value is not None else None

    def _read_models(self, value: str) -> ModelInfo:
        try:
            return ModelInfo(**json.loads(value))
        except (TypeError, ValueError) as exc:
            raise self._damaged(f"its record of the models cannot be read: {exc}") from None

    def library_root(self) -> str | None:
        return self._meta("root")

    def record_library_root(self, root: str) -> None:
        with self._write() as (db, _):
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('root', ?)", (root,))

    def _meta(self, key: str) -> str | None:
        with self._lock, self._reading():
            db = self._reader()
            if db is None:
                return None
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A read that finds the file damaged says so, in the sentence every command gives."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                raise self._damaged(str(exc)) from exc
            raise

    def record_models(self, models: ModelInfo) -> None:
        with self._write() as (db, _):
            row = db.execute("SELECT value FROM meta WHERE key = 'models'").fetchone()
            check_models(self._read_models(row[0]) if row else None, models)
            if row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('models', ?)",
                    (json.dumps(models.__dict__),),
                )

    def upsert(self, items: Sequence[tuple[ImageDocument, np.ndarray]]) -> list[WriteFailure]:
        if not items:
            return []
        with self._write() as (db, generation):
            db.executemany(
                f"INSERT OR REPLACE INTO images ({_DOCUMENT_COLUMNS}, vector, generation) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*_to_row(doc, vector), generation) for doc, vector in items],
            )
            db.executemany("DELETE FROM removed WHERE id = ?", [(doc.id,) for doc, _ in items])
        return []

    def delete(self, ids: Sequence[str]) -> list[WriteFailure]:
        if not ids:
            return []
        with self._write() as (db, generation):
            db.executemany("DELETE FROM images WHERE id = ?", [(doc_id,) for doc_id in ids])
            db.executemany(
                "INSERT OR REPLACE INTO removed (id, generation) VALUES (?, ?)",
                [(doc_id, generation) for doc_id in ids],
            )
        return []

    def search(
        self,
        vector: np.ndarray,
        k: int,
        folder: str | None = None,
        filters: Filters | None = None,
    ) -> list[SearchHit]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        with self._lock, self._reading():
            db = self._reader()
            if db is None:
                return []
            self._refresh(db)
            allowed = _matching_ids(db, filters) if filters else None
            ranked = self._vectors.search(query, k, folder, allowed)
        documents = self._documents([doc_id for doc_id, _ in ranked])
        return [
            SearchHit(document=documents[doc_id], score=cosine_score(cosine))
            for doc_id, cosine in ranked
            if doc_id in documents
        ]

    def get(self, doc_id: str) -> tuple[ImageDocument, np.ndarray] | None:
        """The document and its vector; None for a damaged vector (embedded again by the
        next run), as for no document."""
        with self._lock, self._reading():
            db = self._reader()
            if db is None:
                return None
            row = db.execute(
                f"SELECT {_DOCUMENT_COLUMNS}, vector FROM images WHERE id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            return None
        models = self.models()
        size = models.dims * 4 if models is not None else len(row[-1]) - len(row[-1]) % 4
        if len(row[-1]) != size or size == 0:
            return None
        vector = np.frombuffer(row[-1], dtype=np.float32).copy()
        if not np.isfinite(vector).all():
            return None
        return _to_document(row[:-1]), vector

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        # A range on the primary key, not LIKE: '_' and '%' in a prefix would be wildcards.
        # U+FFFF sorts after every character an id holds (SQLite compares UTF-8 bytes).
        with self._lock, self._reading():
            db = self._reader()
            if db is None:
                return []
            rows = db.execute(
                "SELECT id FROM images WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                (prefix, prefix + "\uffff", limit),
            ).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        with self._lock, self._reading():
            db = self._reader()
            return int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0]) if db else 0

    def empty_here(self) -> bool:
        return self.count() == 0

    def fingerprints(self) -> dict[str, Fingerprint]:
        """Every row's fingerprint; a row whose vector has the wrong length gets one that
        matches no file, so the next run embeds its picture again."""
        with self._lock, self._reading():
            db = self._reader()
            if db is None:
                return {}
            models = self.models()
            size_of_vector = models.dims * 4 if models is not None else -1
            rows = db.execute(
                "SELECT id, path, size, mtime, sha256, (? < 0 OR length(vector) = ?) FROM images",
                (size_of_vector, size_of_vector),
            ).fetchall()
        return {
            doc_id: Fingerprint(path=path, size=size, mtime=mtime, sha256=sha256)
            if sound
            else Fingerprint(path=path, size=-1, mtime=-1.0, sha256="")
            for doc_id, path, size, mtime, sha256, sound in rows
        }

    def status(self) -> StoreStatus:
        with self._lock, self._reading():
            db = self._reader()
            if db is None:
                count, last = 0, None
            else:
                count, last = db.execute("SELECT COUNT(*), MAX(indexed_at) FROM images").fetchone()
        location = str(self._path)
        if db is None:
            location += " (not created yet: run `findimage index FOLDER`)"
        return StoreStatus(
            backend="embedded",
            count=int(count),
            models=self.models(),
            last_indexed_at=datetime.fromisoformat(last) if last else None,
            location=location,
            library_root=self.library_root(),
        )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """One write transaction, with the generation number it stamps on what it changes."""
        with self._lock:
            db = self._writer()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    generation = _generation(db) + 1
                    yield db, generation
                    db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),)
                    )
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if _is_damage(exc):
                    raise self._damaged(str(exc)) from exc
                raise self._write_error(exc) from exc

    def _write_error(self, exc: sqlite3.Error) -> BackendUnavailableError:
        """One plain sentence for a write SQLite refused; every committed batch is kept."""
        return BackendUnavailableError(
            f"Cannot write the index at {self._path} ({exc}): {_cause(exc)}, then run again; "
            "what was indexed before is kept."
        )

    def _refresh(self, db: sqlite3.Connection) -> None:
        """Bring the in-memory vectors up to what is committed, reading only what changed."""
        since = self._vectors.generation
        if since == _generation(db):
            return
        models = self.models()
        # One read transaction, so the generation matches the rows it goes with. Rows come
        # in chunks: a million at once would hold every vector twice more as Python bytes.
        db.execute("BEGIN")
        try:
            generation = _generation(db)
            removed = db.execute("SELECT id FROM removed WHERE generation > ?", (since,)).fetchall()
            self._vectors.remove(row[0] for row in removed)
            expected = db.execute(
                "SELECT COUNT(*) FROM images WHERE generation > ?", (since,)
            ).fetchone()[0]
            cursor = db.execute(
                "SELECT id, folder, vector FROM images WHERE generation > ?", (since,)
            )
            damaged = 0
            while rows := cursor.fetchmany(_REFRESH_CHUNK_ROWS):
                dims = models.dims if models is not None else len(rows[0][2]) // 4
                damaged += self._vectors.add(rows, expected, dims)
                expected -= len(rows)
            if damaged:
                log.warning(
                    "%d pictures in the index at %s have a damaged vector: they are left out "
                    "of searches until the next `findimage index` embeds them again",
                    damaged,
                    self._path,
                )
        except BaseException:
            # Half-applied changes cannot be told apart from the rest: start over next time.
            self._vectors = _VectorIndex(self._vectors.scan_threads)
            raise
        finally:
            db.execute("COMMIT")
        self._vectors.generation = generation

    def _documents(self, ids: list[str]) -> dict[str, ImageDocument]:
        marks = ",".join("?" * len(ids))
        with self._lock, self._reading():
            db = self._reader()
            if db is None:
                return {}
            rows = db.execute(
                f"SELECT {_DOCUMENT_COLUMNS} FROM images WHERE id IN ({marks})", ids
            ).fetchall()
        return {row[0]: _to_document(row) for row in rows}


def _matching_ids(db: sqlite3.Connection, filters: Filters) -> set[str]:
    """The ids of the pictures of those dates and places (findimage/filters.py for the meaning).

    Dates in SQL: `taken_at` holds naive ISO text, which sorts as time does, and `mtime`
    seconds since the epoch. Places: a latitude band in SQL, then the exact great-circle
    distance here.
    """
    clauses: list[str] = []
    params: list[object] = []
    if filters.by_date:
        after, before = filters.after, filters.before
        clauses.append(
            "((taken_at IS NOT NULL AND taken_at >= ? AND taken_at < ?)"
            " OR (taken_at IS NULL AND mtime >= ? AND mtime < ?))"
        )
        params += [
            after.isoformat() if after else "",
            before.isoformat() if before else "\uffff",
            utc_timestamp(after) if after else -math.inf,
            utc_timestamp(before) if before else math.inf,
        ]
    near = filters.near
    if near is not None:
        band = math.degrees(near.km / EARTH_RADIUS_KM)
        clauses.append("lat IS NOT NULL AND lon IS NOT NULL AND lat BETWEEN ? AND ?")
        params += [near.lat - band, near.lat + band]
    rows = db.execute(f"SELECT id, lat, lon FROM images WHERE {' AND '.join(clauses)}", params)
    if near is None:
        return {row[0] for row in rows}
    return {
        doc_id for doc_id, lat, lon in rows if distance_km(near.lat, near.lon, lat, lon) <= near.km
    }


class _NotCreatedYet(Exception):
    """An index file without tables yet: a first run is creating it."""


def _is_damage(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "").startswith(_DAMAGE_CODES)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _generation(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def _to_row(doc: ImageDocument, vector: np.ndarray) -> tuple:
    record = doc.to_record()
    gps = record.pop("gps") or {}
    record.update(lat=gps.get("lat"), lon=gps.get("lon"))
    vector_bytes = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
    return (*(record[column] for column in _COLUMNS), vector_bytes)


def _to_document(row: Sequence) -> ImageDocument:
    record = dict(zip(_COLUMNS, row, strict=True))
    lat, lon = record.pop("lat"), record.pop("lon")
    record["gps"] = {"lat": lat, "lon": lon} if lat is not None and lon is not None else None
    return ImageDocument.from_record(record)


def _cause(exc: sqlite3.Error) -> str:
    """What the person can do about an error SQLite gave, by its result code."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return "the disk may be full: free some space"
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return "check that FINDIMAGE_DATA_DIR can be written"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "another program holds it: wait for it to finish"
    return "check FINDIMAGE_DATA_DIR"
