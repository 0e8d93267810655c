"""Signed preview links and downscaled previews that never leave the store root."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image

from bot.previews import (
    PREVIEW_MAX_SIDE,
    PreviewEndpoint,
    PreviewSigner,
    SignedUrlPreviews,
    render_preview,
)
from findimage.errors import NotFoundError
from findimage.library import LocalFolder, OutsideLibraryError
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


@pytest.mark.parametrize("name", ["big.png", "big.jpg"])
def test_a_preview_is_a_downscaled_jpeg(tmp_path: Path, name: str) -> None:
    # Pictures are decoded at a reduced size when that is enough, never below the preview's:
    # a square one shows whether its short side was kept at the preview's size.
    save(gradient((1000, 1000)), tmp_path / name)

    preview = Image.open(io.BytesIO(render_preview(LocalFolder(tmp_path), name, MAX_BYTES)))

    assert preview.format == "JPEG"
    assert max(preview.size) == PREVIEW_MAX_SIDE


def test_paths_that_leave_the_store_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    save(gradient(), tmp_path / "outside.png")
    root.mkdir()
    (root / "link.png").symlink_to(tmp_path / "outside.png")

    for path in ("../outside.png", "link.png", str(tmp_path / "outside.png")):
        with pytest.raises(OutsideLibraryError):
            render_preview(LocalFolder(root), path, MAX_BYTES)
    with pytest.raises(NotFoundError):
        render_preview(LocalFolder(root), "missing.png", MAX_BYTES)


def _get(endpoint: PreviewEndpoint, url: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """One WSGI request to `endpoint`, as wsgiref would make it; header names lower-cased."""
    parts = urlsplit(url)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": unquote(parts.path)}
    environ["QUERY_STRING"] = parts.query
    answer: dict = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = {name.lower(): value for name, value in headers}

    body = b"".join(endpoint(environ, start_response))
    assert int(answer["headers"]["content-length"]) == len(body)
    return answer["status"], answer["headers"], body


@pytest.fixture
def signed_previews(tmp_path: Path) -> tuple[SignedUrlPreviews, PreviewEndpoint]:
    save(gradient((900, 600)), tmp_path / "trips" / "a b.png")
    signer = PreviewSigner("secret", ttl_seconds=600, clock=lambda: 1_000_000.0)
    paths = {"doc 1": "trips/a b.png", "gone": "trips/missing.png"}
    endpoint = PreviewEndpoint(
        paths.get, LocalFolder(tmp_path), signer, MAX_BYTES, cache_seconds=600
    )
    return SignedUrlPreviews("https://bot.example.com/", signer, LocalFolder(tmp_path)), endpoint


def test_a_signed_url_round_trips_to_a_cacheable_jpeg(
    signed_previews: tuple[SignedUrlPreviews, PreviewEndpoint],
) -> None:
    previews, endpoint = signed_previews
    url = previews.url("doc 1")
    assert url.startswith("https://bot.example.com/images/doc%201?exp=1000600&sig=")

    status, headers, body = _get(endpoint, url)

    assert status == 200
    assert headers["content-type"] == "image/jpeg"
    assert headers["cache-control"] == "private, max-age=600"
    assert Image.open(io.BytesIO(body)).format == "JPEG"


def test_the_preview_endpoint_refuses_what_it_must(
    signed_previews: tuple[SignedUrlPreviews, PreviewEndpoint],
) -> None:
    previews, endpoint = signed_previews
    url = previews.url("doc 1")
    other = previews.url("gone")

    status, headers, _ = _get(endpoint, url, method="POST")
    assert (status, headers["allow"]) == (405, "GET")
    # Another document's signature does not open this one.
    forged = url.split("&sig=")[0] + "&sig=" + other.split("&sig=")[1]
    assert _get(endpoint, forged)[0] == 403
    assert _get(endpoint, url.split("?")[0])[0] == 403
    assert _get(endpoint, previews.url("unknown"))[0] == 404
    status, headers, _ = _get(endpoint, other)
    assert status == 404
    assert headers["content-type"] == "text/plain; charset=utf-8"
