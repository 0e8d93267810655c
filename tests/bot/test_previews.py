"""Signed preview links and downscaled previews that never leave the store root."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.errors import NotFoundError
from bot.previews import PREVIEW_MAX_SIDE, OutsideStoreError, PreviewSigner, render_preview
from tests.support.pictures import gradient, save

MAX_BYTES = 10 * 1024 * 1024


def test_a_signature_is_valid_for_its_document_until_it_expires() -> None:
    now = [1_000_000.0]
    signer = PreviewSigner("secret", ttl_seconds=60, clock=lambda: now[0])
    expires, signature = signer.sign("doc1")

    assert expires == 1_000_060
    assert signer.verify("doc1", str(expires), signature)
    assert not signer.verify("doc2", str(expires), signature)
    assert not signer.verify("doc1", str(expires + 1), signature)
    assert not signer.verify("doc1", "soon", signature)
    assert not PreviewSigner("other", 60, clock=lambda: now[0]).verify(
        "doc1", str(expires), signature
    )
    now[0] = expires  # valid through its last second
    assert signer.verify("doc1", str(expires), signature)
    now[0] = expires + 1
    assert not signer.verify("doc1", str(expires), signature)


def test_a_preview_is_a_downscaled_jpeg(tmp_path: Path) -> None:
    save(gradient((1600, 900)), tmp_path / "big.png")

    preview = Image.open(io.BytesIO(render_preview(tmp_path, "big.png", MAX_BYTES)))

    assert preview.format == "JPEG"
    assert max(preview.size) == PREVIEW_MAX_SIDE


def test_paths_that_leave_the_store_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    save(gradient(), tmp_path / "outside.png")
    root.mkdir()
    (root / "link.png").symlink_to(tmp_path / "outside.png")

    for path in ("../outside.png", "link.png", str(tmp_path / "outside.png")):
        with pytest.raises(OutsideStoreError):
            render_preview(root, path, MAX_BYTES)
    with pytest.raises(NotFoundError):
        render_preview(root, "missing.png", MAX_BYTES)
