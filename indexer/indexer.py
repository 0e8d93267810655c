"""Brings the index in line with the library: new and changed pictures in, gone ones out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from findimage.documents import (
    Fingerprint,
    ImageDocument,
    IndexReport,
    ModelInfo,
    Skipped,
    document_id,
)
from findimage.encoders import ImageEncoder
from findimage.library import ObjectStoreLibrary, shown_path
from findimage.stores.base import VectorStore
from indexer.exclude import Exclusions
from indexer.pipeline import (
    BackgroundWriter,
    Copied,
    Decoded,
    Failed,
    FilePreparer,
    Prepared,
    Unchanged,
    prepare_in_threads,
)
from indexer.scope import Scope, library_scope
from indexer.shards import Shard, ShardProgress
from indexer.walk import LibraryFile, WalkSkip, walk_library, walk_objects

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexPlan:
    """What a run has to look at: files whose size or mtime moved, and ids whose file is gone."""

    indexed: dict[str, Fingerprint]
    candidates: list[LibraryFile]
    unchanged: int
    gone: dict[str, Fingerprint]
    walk_skips: list[WalkSkip]

    @property
    def incomplete(self) -> bool:
        """Whether some place could not be looked at (its entries are kept, not deleted)."""
        return any(skip.unknown for skip in self.walk_skips)


class Indexer:
    def __init__(
        self,
        store: VectorStore,
        image_encoder: ImageEncoder,
        models: Callable[[], ModelInfo],
        batch_size: int,
        decode_workers: int,
        max_file_bytes: int,
        s3_endpoint_url: str | None = None,
        exclude: Sequence[str] = (),
    ):
        self._store = store
        self._encoder = image_encoder
        self._models = models
        self._batch_size = batch_size
        self._workers = decode_workers
        self._max_file_bytes = max_file_bytes
        self._s3_endpoint_url = s3_endpoint_url
        self._exclude = list(exclude)
        # The run's library root, and whether its models are yet to be recorded or checked.
        self._root: Path | str | None = None
        self._models_pending = True
        # Whether a run already read the index's models through this store: the next run
        # (a watch burst) reads them again, as another process may have rebuilt the index.
        self._has_run = False
        # The run's sharded progress, and its preparer (to read a picture whose vector to
        # reuse was deleted meanwhile).
        self._shard_progress: ShardProgress | None = None
        self._preparer: FilePreparer | None = None

    def plan(self, scope: Scope, shard: Shard | None = None) -> IndexPlan:
        """Compare the files under the scope with the index, reading no picture.

        With a `shard`, only its pictures are candidates and only its missing pictures are
        gone; `indexed` still holds the whole index, so a picture renamed from another
        shard's path reuses its vector by content.
        """
        # Writes of a run that was killed before its final refresh become visible first, so
        # they are not embedded again.
        self._store.refresh()
        indexed = self._store.fingerprints()
        candidates: list[LibraryFile] = []
        skips: list[WalkSkip] = []
        seen: set[str] = set()
        unchanged = 0
        if isinstance(scope.root, Path):
            exclusions = Exclusions.for_library(scope.root, self._exclude)
            entries = walk_library(scope.root, scope.folder, exclusions)
        else:
            library = ObjectStoreLibrary(scope.root, self._s3_endpoint_url)
            # Listed before the ignore file is read: a refusal is then named by the listing's
            # answer, which says why (a GET of a missing or forbidden object cannot).
            listed = list(library.objects(scope.folder))
            whole = None if scope.folder else {stored.relative_path for stored in listed}
            exclusions = Exclusions.for_objects(library, self._exclude, whole)
            entries = walk_objects(library, scope.folder, exclusions, listed)
        for entry in entries:
            if isinstance(entry, WalkSkip):
                # An unreadable place keeps every shard from deleting what lies under it.
                if shard is None or entry.unknown or shard.holds(entry.relative_path):
                    skips.append(entry)
                continue
            if shard is not None and not shard.holds(entry.relative_path):
                continue
            doc_id = document_id(entry.relative_path)
            seen.add(doc_id)
            known = indexed.get(doc_id)
            if known and known.size == entry.size and known.mtime == entry.mtime:
                unchanged += 1
            else:
                candidates.append(entry)
        # Only what lies in the folder may be gone: the rest of the library was not looked at,
        # and neither was what lies under a place the walk could not read.
        prefix = f"{shown_path(scope.folder)}/" if scope.folder else ""
        unknown = [skip.relative_path for skip in skips if skip.unknown]
        gone = {
            doc_id: fp
            for doc_id, fp in indexed.items()
            if doc_id not in seen
            and fp.path.startswith(prefix)
            and not _under(fp.path, unknown)
            and (shard is None or shard.holds(fp.path))
        }
        return IndexPlan(indexed, candidates, unchanged, gone, skips)

    def run(
        self,
        path: Path | str,
        dry_run: bool = False,
        progress: bool = True,
        replace: bool = False,
        shard: Shard | None = None,
        shard_progress: ShardProgress | None = None,
    ) -> IndexReport:
        """Bring the index in line with the library at `path` (a folder or an s3:// URL), or
        with the folder `path` in it.

        The models load only when a picture needs embedding: a run with nothing to do
        answers from the plan alone. A run that writes holds the store's writer lock from
        before it reads the recorded library to its last write, so two runs (a --replace
        among them) never interleave. The models the index records are read again at the
        start of each run after the first, and every run checks them before its first write.
        A `shard` run covers only that shard's pictures (indexer/shards.py) and tells
        `shard_progress` what it wrote, and when it is done.
        """
        if self._has_run:
            self._store.reload()
        self._has_run = True
        # Shard workers write the same index at once on purpose: one lease per shard.
        part = None if shard is None else (shard.number, shard.count)
        with nullcontext() if dry_run else self._store.writing(part):
            return self._run(path, dry_run, progress, replace, shard, shard_progress)

    def _run(
        self,
        path: Path | str,
        dry_run: bool,
        progress: bool,
        replace: bool,
        shard: Shard | None,
        shard_progress: ShardProgress | None,
    ) -> IndexReport:
        scope = library_scope(
            path, self._store.library_root(), replace, self._store.location_setting
        )
        plan = self.plan(scope, shard)
        report = IndexReport(
            unchanged=plan.unchanged,
            skipped=[Skipped(skip.relative_path, skip.reason) for skip in plan.walk_skips],
            dry_run=dry_run,
            incomplete=plan.incomplete,
        )
        if dry_run:
            report.to_index = [file.relative_path for file in plan.candidates]
            report.to_delete = sorted(fp.path for fp in plan.gone.values())
            return report
        self._root, self._models_pending = scope.root, True
        self._shard_progress = shard_progress
        self._record_root()
        if shard_progress is not None:
            shard_progress.started()
        try:
            self._write_all(plan, report, progress)
        except BaseException:
            # What was written before the stop becomes searchable too.
            self._refresh_quietly()
            raise
        self._store.refresh()
        # Done only once every write is searchable: a swap may follow at once.
        if shard_progress is not None:
            shard_progress.finished()
        return report

    def _write_all(self, plan: IndexPlan, report: IndexReport, progress: bool) -> None:
        preparer = FilePreparer(plan.indexed, document_id, self._max_file_bytes, self._encoder)
        self._preparer = preparer
        lookahead = self._batch_size * 2 + self._workers
        batch: list[Prepared] = []
        # Entries of files that now hold no usable picture: they leave with the gone ones.
        stale: dict[str, Fingerprint] = {}
        with (
            tqdm(
                total=len(plan.candidates),
                unit="img",
                desc="Indexing",
                # Nothing to look at, no bar; None lets tqdm leave it out where stderr is no
                # terminal.
                disable=True if not (progress and plan.candidates) else None,
            ) as bar,
            BackgroundWriter() as writer,
        ):
            for prepared in prepare_in_threads(plan.candidates, preparer, self._workers, lookahead):
                batch.append(prepared)
                if len(batch) >= self._batch_size:
                    writer.submit(self._embed(batch, report, plan.indexed, stale))
                    bar.update(len(batch))
                    batch = []
            writer.submit(self._embed(batch, report, plan.indexed, stale))
            bar.update(len(batch))
        # Deletions come last, so a renamed picture could still borrow its old vector above.
        gone = {**plan.gone, **stale}
        failed = self._store.delete(list(gone))
        for failure in failed:
            path = gone[failure.doc_id].path
            log.warning("could not remove %s from the index: %s", path, failure.reason)
            report.skipped.append(Skipped(path, f"not removed from the index: {failure.reason}"))
        report.deleted = len(gone) - len(failed)

    def _refresh_quietly(self) -> None:
        try:
            self._store.refresh()
        except Exception as exc:  # the failure that stopped the run is the one to report
            log.info("could not refresh the index after the run stopped: %r", exc)

    def _record_root(self) -> None:
        """Record the library once the index exists (it is created with the first vectors)."""
        root = str(self._root)
        if self._store.models() is not None and self._store.library_root() != root:
            self._store.record_library_root(root)

    def _embed(
        self,
        batch: Sequence[Prepared],
        report: IndexReport,
        indexed: dict[str, Fingerprint],
        stale: dict[str, Fingerprint],
    ) -> Callable[[], None]:
        """Encode what a batch needs now; return the write, for the writer thread. Entries
        of files that no longer hold a usable picture are added to `stale`."""
        now = datetime.now(UTC)
        items: list[tuple[ImageDocument, np.ndarray]] = []
        unchanged: set[str] = set()
        vanished: list[LibraryFile] = []
        # The vectors to reuse, in one request for the whole batch.
        reused = self._store.get_many(
            [
                p.doc_id if isinstance(p, Unchanged) else p.source_id
                for p in batch
                if isinstance(p, Unchanged | Copied)
            ]
        )
        for prepared in batch:
            match prepared:
                case Failed(file, reason, no_picture, unknown):
                    log.info("skipped %s: %s", file.relative_path, reason)
                    report.skipped.append(Skipped(file.relative_path, reason))
                    report.incomplete = report.incomplete or unknown
                    doc_id = document_id(file.relative_path)
                    if no_picture and doc_id in indexed:
                        stale[doc_id] = indexed[doc_id]
                case Unchanged(file, _, doc_id) | Copied(file, _, doc_id):
                    found = reused.get(doc_id)
                    if found is None:
                        # Deleted since the plan (another shard's worker removed the old path
                        # of a renamed picture): the picture is read and embedded instead.
                        vanished.append(file)
                        continue
                    document = _moved(found[0], file, now)
                    items.append((document, found[1]))
                    if isinstance(prepared, Unchanged):
                        unchanged.add(document.id)
        decoded = [p for p in batch if isinstance(p, Decoded)]
        assert self._preparer is not None
        for again in map(self._preparer.decoded, vanished):
            if isinstance(again, Decoded):
                decoded.append(again)
            else:
                assert isinstance(again, Failed)
                report.skipped.append(Skipped(again.file.relative_path, again.reason))
                report.incomplete = report.incomplete or again.unknown
        for prepared, vector in self._encode(decoded, report):
            items.append((_new_document(prepared, now), vector))
        return lambda: self._write(items, unchanged, report)

    def _write(
        self,
        items: list[tuple[ImageDocument, np.ndarray]],
        unchanged: set[str],
        report: IndexReport,
    ) -> None:
        # Only what the store confirms counts: a failed write is reported, never counted.
        failed = {failure.doc_id: failure.reason for failure in self._store.upsert(items)}
        if self._shard_progress is not None:
            self._shard_progress.wrote(len(items) - len(failed))
        for document, _ in items:
            if document.id in failed:
                log.warning("could not write %s: %s", document.path, failed[document.id])
                report.skipped.append(Skipped(document.path, failed[document.id]))
            elif document.id in unchanged:
                report.unchanged += 1
            else:
                report.indexed += 1

    def _encode(
        self, decoded: list[Decoded], report: IndexReport
    ) -> list[tuple[Decoded, np.ndarray]]:
        if not decoded:
            return []
        if self._models_pending:
            # The first picture that needs the model is when it loads and is checked against
            # the index's models (a fresh index is created with them here).
            self._store.record_models(self._models())
            self._record_root()
            self._models_pending = False
        try:
            vectors = self._encoder.encode_prepared([p.model_input for p in decoded])
            return list(zip(decoded, vectors, strict=True))
        except (ValueError, RuntimeError, OSError):
            log.exception("a batch failed to encode; retrying its pictures one by one")
        encoded = []
        for prepared in decoded:
            try:
                encoded.append((prepared, self._encoder.encode_prepared([prepared.model_input])[0]))
            except (ValueError, RuntimeError, OSError) as exc:
                reason = f"the model could not encode it ({exc})"
                report.skipped.append(Skipped(prepared.file.relative_path, reason))
        return encoded


def _under(path: str, places: list[str]) -> bool:
    """Whether `path` is one of `places` or lies in one ("." being the library itself)."""
    return any(place in (".", path) or path.startswith(f"{place}/") for place in places)


def _new_document(prepared: Decoded, now: datetime) -> ImageDocument:
    image = prepared.image
    return ImageDocument(
        **_location(prepared.file),
        sha256=prepared.sha256,
        width=image.width,
        height=image.height,
        taken_at=image.taken_at,
        gps=image.gps,
        indexed_at=now,
    )


def _moved(source: ImageDocument, file: LibraryFile, now: datetime) -> ImageDocument:
    """The same picture's metadata under the file's own path, size and mtime."""
    return replace(source, **_location(file), indexed_at=now)


def _location(file: LibraryFile) -> dict:
    path = PurePosixPath(file.relative_path)
    parent = path.parent.as_posix()
    return {
        "id": document_id(file.relative_path),
        "path": file.relative_path,
        "name": path.name,
        "folder": "" if parent == "." else parent,
        "size": file.size,
        "mtime": file.mtime,
    }
