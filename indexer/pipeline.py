"""Keeping the engine busy: reading, hashing, decoding and writing around the encoder.

Worker threads read, hash, decode (JPEGs at the smallest scale that covers the model's
input) and preprocess pictures into the model's input ahead of the encoder; results come
back in input order with at most `lookahead` files in flight, so memory stays bounded by a
few batches however large the library is. Index writes run on one more thread, at most
one batch behind, so the encoder never waits for SQLite or Elasticsearch.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from findimage.documents import Fingerprint
from findimage.encoders import ImageEncoder
from findimage.errors import FindImageError, ImageError
from findimage.images import DecodedImage, decode_image
from indexer.walk import LibraryFile

log = logging.getLogger(__name__)


@dataclass
class Unchanged:
    """Same bytes as the indexed copy: keep its vector, refresh its size and mtime."""

    file: LibraryFile
    sha256: str
    doc_id: str


@dataclass
class Copied:
    """Same bytes as another indexed picture (a rename or a copy): reuse that vector."""

    file: LibraryFile
    sha256: str
    source_id: str


@dataclass
class Decoded:
    """New or changed: needs the encoder, which takes `model_input`."""

    file: LibraryFile
    sha256: str
    image: DecodedImage
    model_input: object


@dataclass
class Failed:
    """Not indexed, for `reason`. `no_picture`: the file is there and holds no picture
    findimage can use (empty, damaged, too large), so an older entry for it must go;
    `unknown`: it could not be read at all, so what the index has for it is kept."""

    file: LibraryFile
    reason: str
    no_picture: bool = False
    unknown: bool = False


Prepared = Unchanged | Copied | Decoded | Failed


class FilePreparer:
    """Turns a library file into what the indexer does with it, without touching the model."""

    def __init__(
        self,
        indexed: dict[str, Fingerprint],
        id_of: Callable[[str], str],
        max_file_bytes: int,
        encoder: ImageEncoder,
    ):
        self._encoder = encoder
        self._indexed = indexed
        self._id_of = id_of
        self._max_file_bytes = max_file_bytes
        self._id_by_sha = {fp.sha256: doc_id for doc_id, fp in indexed.items()}

    def __call__(self, file: LibraryFile) -> Prepared:
        """Whatever one file raises, that file alone fails, with its reason."""
        return self._guarded(file, reuse=True)

    def decoded(self, file: LibraryFile) -> Decoded | Failed:
        """The file read and decoded for the encoder, reusing no indexed vector: the one to
        reuse was deleted after the plan (by another shard's worker)."""
        prepared = self._guarded(file, reuse=False)
        assert isinstance(prepared, Decoded | Failed)
        return prepared

    def _guarded(self, file: LibraryFile, reuse: bool) -> Prepared:
        try:
            return self._prepare(file, reuse)
        except FindImageError:
            # Only the model's own failure gets here (it could not load): that stops the run.
            raise
        except Exception as exc:
            log.info("unexpected failure reading %s", file.relative_path, exc_info=True)
            return Failed(file, f"cannot be read ({type(exc).__name__}: {exc})", unknown=True)

    def _prepare(self, file: LibraryFile, reuse: bool) -> Prepared:
        try:
            data = file.read_bytes(self._max_file_bytes)
        except ImageError as exc:
            return Failed(file, str(exc), no_picture=True)
        except FileNotFoundError as exc:  # gone since the walk: the next run removes it
            return Failed(file, f"cannot be read ({exc.strerror or exc})")
        except OSError as exc:
            return Failed(file, f"cannot be read ({exc.strerror or exc})", unknown=True)
        except FindImageError as exc:
            return Failed(file, str(exc).rstrip("."), unknown=True)
        sha256 = hashlib.sha256(data).hexdigest()
        doc_id = self._id_of(file.relative_path)
        known = self._indexed.get(doc_id)
        if reuse and known is not None and known.sha256 == sha256:
            return Unchanged(file, sha256, doc_id)
        source_id = self._id_by_sha.get(sha256) if reuse else None
        if source_id is not None:
            return Copied(file, sha256, source_id)
        try:
            decoded = decode_image(data, self._max_file_bytes, self._encoder.input_side)
        except ImageError as exc:
            return Failed(file, str(exc), no_picture=True)
        return Decoded(file, sha256, decoded, self._encoder.prepare_image(decoded.image))


def prepare_in_threads(
    files: Iterable[LibraryFile],
    prepare: Callable[[LibraryFile], Prepared],
    workers: int,
    lookahead: int,
) -> Iterator[Prepared]:
    """Apply `prepare` to each file on `workers` threads, yielding results in input order."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[Future[Prepared]] = deque()
        for file in files:
            pending.append(pool.submit(prepare, file))
            if len(pending) >= lookahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class BackgroundWriter:
    """Runs write jobs in order on one thread, at most `depth` queued behind the running one.

    `submit` waits while the queue is full, which bounds memory; a job's exception comes
    back from the next `submit` or from leaving the `with` block, which first waits for
    every job already submitted, so nothing handed over is dropped.
    """

    def __init__(self, depth: int = 1):
        self._depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write")
        self._pending: deque[Future[None]] = deque()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)

    def submit(self, job: Callable[[], None]) -> None:
        while len(self._pending) > self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(job))
