"""Preparing store files for the indexer, ahead of the model."""

from __future__ import annotations

from pathlib import Path

from bot.documents import document_id
from indexer.pipeline import Failed, FilePreparer
from indexer.walk import StoreFile


def test_a_file_gone_between_the_walk_and_the_read_fails_with_its_reason(tmp_path: Path) -> None:
    gone = StoreFile(root=tmp_path, relative_path="gone.jpg", size=10, mtime=1.0)
    prepared = FilePreparer({}, document_id, max_file_bytes=1024)(gone)
    assert prepared == Failed(gone, "cannot be read (No such file or directory)")
