"""What a real library holds and nobody planned for (issue 20): each odd file is that file's
problem only, what cannot be read is never taken for deleted, each real file has one entry,
and two runs never write one index at once."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from findimage.documents import ModelInfo, document_id
from findimage.encoders import ClipEncoder
from findimage.errors import BackendUnavailableError
from findimage.library import LocalFolder
from findimage.settings import Settings
from findimage.stores.embedded import EmbeddedStore
from indexer.exclude import IGNORE_FILE
from indexer.indexer import Indexer
from tests.support.pictures import draw_shape, save
from tests.support.raw_files import truncated_dng


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    for i, (color, shape) in enumerate(
        [("red", "circle"), ("green", "square"), ("blue", "circle")]
    ):
        save(draw_shape(color, shape), root / f"f{i}" / f"{color}.png")
    return root


@pytest.fixture
def store(settings: Settings) -> EmbeddedStore:
    opened = EmbeddedStore(settings.data_dir)
    yield opened
    opened.close()


@pytest.fixture
def encoder(tiny_clip: Path) -> ClipEncoder:
    return ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu", batch_size=8)


def _indexer(
    store: EmbeddedStore, encoder: ClipEncoder, exclude: list[str] | None = None
) -> Indexer:
    return Indexer(
        store=store,
        image_encoder=encoder,
        models=lambda: ModelInfo(encoder.model_name, encoder.model_name, encoder.dims),
        batch_size=4,
        decode_workers=2,
        max_file_bytes=5 * 1024 * 1024,
        exclude=exclude or [],
    )


@pytest.fixture
def indexer(store: EmbeddedStore, encoder: ClipEncoder) -> Indexer:
    return _indexer(store, encoder)


def _paths(store: EmbeddedStore) -> list[str]:
    return sorted(fp.path for fp in store.fingerprints().values())


def _reasons(report: object) -> dict[str, str]:
    return {skip.path: skip.reason for skip in report.skipped}  # type: ignore[attr-defined]


def test_a_truncated_raw_file_is_skipped_and_the_run_goes_on(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    pytest.importorskip("rawpy", reason="the raw extra is not installed")
    (library / "a-card-copy.dng").write_bytes(truncated_dng())
    report = indexer.run(library, progress=False)
    assert report.indexed == 3
    assert "damaged or truncated" in _reasons(report)["a-card-copy.dng"]
    assert _paths(store) == ["f0/red.png", "f1/green.png", "f2/blue.png"]


def test_symbolic_link_loops_with_picture_names_do_not_stop_the_run(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    (library / "self.jpg").symlink_to("self.jpg")
    (library / "ping.jpg").symlink_to("pong.jpg")
    (library / "pong.jpg").symlink_to("ping.jpg")
    report = indexer.run(library, progress=False)
    assert report.indexed == 3
    assert _reasons(report) == dict.fromkeys(
        ["ping.jpg", "pong.jpg", "self.jpg"], "a symbolic link loop"
    )


def test_a_link_to_a_parent_folder_adds_no_entry_whatever_the_scope(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    (library / "f0" / "up").symlink_to("..")
    for scope in (library, library / "f0", library / "f0" / "up" / "f1", library):
        indexer.run(scope, progress=False)
        assert _paths(store) == ["f0/red.png", "f1/green.png", "f2/blue.png"], scope


def test_a_name_that_is_not_utf8_is_indexed_under_an_escaped_path(
    indexer: Indexer, store: EmbeddedStore, library: Path
) -> None:
    raw = library / os.fsdecode(b"caf\xe9.png")
    save(draw_shape("red", "square"), raw)
    report = indexer.run(library, progress=False)
    assert (report.indexed, report.skipped) == (4, [])
    assert "caf\\xe9.png" in _paths(store)
    assert store.get(document_id("caf\\xe9.png")) is not None
    # Found again under the same id, and readable back through the library by that path.
    assert indexer.run(library, progress=False).unchanged == 4
    assert LocalFolder(library).read("caf\\xe9.png", 10**7) == raw.read_bytes()
    raw.unlink()
    assert indexer.run(library, progress=False).deleted == 1


def test_a_fifo_and_a_socket_named_like_pictures_are_skipped_unopened(
    indexer: Indexer, library: Path
) -> None:
    os.mkfifo(library / "pipe.jpg")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(library / "socket.png"))
        report = indexer.run(library, progress=False)
    assert report.indexed == 3
    assert set(_reasons(report)) == {"pipe.jpg", "socket.png"}


def _refuse_listing(monkeypatch: pytest.MonkeyPatch, refused: Path) -> None:
    """Listing `refused` fails as the kernel fails it for a folder without read permission:
    the suite runs as root too, whom modes do not stop, so the far edge (os.scandir) says it."""
    real_scandir = os.scandir

    def scandir(path: str | Path) -> object:
        if Path(path) == refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("locked", ["f1", ""])
def test_what_cannot_be_listed_keeps_its_entries_and_the_run_is_incomplete(
    indexer: Indexer,
    store: EmbeddedStore,
    library: Path,
    monkeypatch: pytest.MonkeyPatch,
    locked: str,
) -> None:
    indexer.run(library, progress=False)
    before = store.fingerprints()
    with monkeypatch.context() as patched:
        _refuse_listing(patched, library.resolve() / locked if locked else library.resolve())
        report = indexer.run(library, progress=False)
    assert (report.deleted, report.incomplete) == (0, True)
    assert _reasons(report) == {locked or ".": "cannot be listed (Permission denied)"}
    assert store.fingerprints() == before
    (library / "f1" / "green.png").unlink()
    report = indexer.run(library, progress=False)
    assert (report.deleted, report.incomplete) == (1, False)


@pytest.mark.parametrize("content", [b"", b"garbage, not a picture"])
def test_a_picture_overwritten_by_a_broken_file_leaves_the_index(
    indexer: Indexer, store: EmbeddedStore, library: Path, content: bytes
) -> None:
    indexer.run(library, progress=False)
    (library / "f0" / "red.png").write_bytes(content)
    report = indexer.run(library, progress=False)
    assert report.deleted == 1 and "f0/red.png" in _reasons(report)
    assert _paths(store) == ["f1/green.png", "f2/blue.png"]


def test_excluded_pictures_stay_out_and_indexed_ones_leave(
    store: EmbeddedStore, encoder: ClipEncoder, library: Path
) -> None:
    save(draw_shape("red", "triangle"), library / "@eaDir" / "red.png" / "SYNOFILE_THUMB.png")
    save(draw_shape("red", "triangle"), library / "drafts" / "x.png")
    _indexer(store, encoder).run(library, progress=False)
    assert len(_paths(store)) == 5
    (library / IGNORE_FILE).write_text("drafts/\n")
    report = _indexer(store, encoder, ["@eaDir"]).run(library, progress=False)
    assert report.deleted == 2
    assert _paths(store) == ["f0/red.png", "f1/green.png", "f2/blue.png"]


def test_a_second_writer_is_refused_with_the_first_ones_pid_and_host(
    indexer: Indexer, store: EmbeddedStore, settings: Settings, library: Path
) -> None:
    other = EmbeddedStore(settings.data_dir)
    try:
        with other.writing():
            with pytest.raises(BackendUnavailableError) as refused:
                indexer.run(library, progress=False, replace=True)
            # A dry run writes nothing and needs no lock.
            assert len(indexer.run(library, dry_run=True, progress=False).to_index) == 3
    finally:
        other.close()
    assert f"pid {os.getpid()} on {socket.gethostname()}" in str(refused.value)
    assert store.count() == 0
    # The lock went with the first writer.
    assert indexer.run(library, progress=False).indexed == 3
