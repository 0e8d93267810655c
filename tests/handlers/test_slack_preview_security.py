"""The signed `/images/<id>` endpoint never serves a file outside the slack_library, nor without a
valid, unexpired signature for that very picture."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot.app import build_wsgi_app, make_http_server
from bot.previews import PreviewSigner
from findimage.factory import build_indexer
from findimage.search import SearchService
from findimage.stores.embedded import DATABASE_NAME, EmbeddedStore
from tests.support.pictures import draw_shape, gradient, save
from tests.support.slack_bot import PREVIEW_SECRET, IndexedLibrary, bot_settings


@dataclass
class Endpoint:
    url: str
    root: Path
    outside: Path
    data_dir: Path
    ids: dict[str, str]  # relative path -> document id

    def link(self, doc_id: str, signer: PreviewSigner | None = None) -> str:
        expires, signature = (signer or PreviewSigner(PREVIEW_SECRET, 3600)).sign(doc_id)
        return f"{self.url}/images/{doc_id}?exp={expires}&sig={signature}"


@pytest.fixture
def endpoint(
    slack_library: IndexedLibrary, trained_clip: Path, tmp_path: Path
) -> Iterator[Endpoint]:
    """A small library of its own (its entries get rewritten), served as `findimage serve` does."""
    root, data_dir, outside = tmp_path / "store", tmp_path / "data", tmp_path / "outside"
    outside.mkdir()
    save(gradient(seed=7), outside / "secret.png")
    save(draw_shape("red", "circle"), root / "red.png")
    save(draw_shape("blue", "square"), root / "blue.png")
    save(draw_shape("green", "circle"), root / "green.png")
    settings = bot_settings(
        trained_clip,
        root,
        data_dir,
        public_base_url="http://127.0.0.1",
        model_cache=slack_library.settings.model_cache,
    )
    store = EmbeddedStore(data_dir)
    assert build_indexer(settings, store).run(root, progress=False).indexed == 3
    service = SearchService(
        store=store,
        image_encoder=slack_library.image_encoder,
        text_encoder=slack_library.text_encoder,
        max_file_bytes=settings.max_file_bytes,
    )
    server = make_http_server(build_wsgi_app(settings, service, None), "127.0.0.1", 0, settings)
    server.start()
    ids = {doc.path: doc.id for doc in _documents(data_dir, store)}
    yield Endpoint(f"http://127.0.0.1:{server.port}", root, outside, data_dir, ids)
    server.stop()
    store.close()


def _documents(data_dir: Path, store: EmbeddedStore) -> list:
    db = sqlite3.connect(data_dir / DATABASE_NAME)
    try:
        ids = [row[0] for row in db.execute("SELECT id FROM images")]
    finally:
        db.close()
    return [store.get(doc_id)[0] for doc_id in ids]


def _rewrite_path(data_dir: Path, doc_id: str, path: str) -> None:
    """What a tampered or corrupted index holds: the entry now names another file."""
    db = sqlite3.connect(data_dir / DATABASE_NAME)
    try:
        db.execute("UPDATE images SET path = ? WHERE id = ?", (path, doc_id))
        db.commit()
    finally:
        db.close()


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=30)


def test_a_valid_link_serves_its_picture(endpoint: Endpoint) -> None:
    response = get(endpoint.link(endpoint.ids["red.png"]))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"


def test_forged_tampered_cross_id_and_expired_links_are_refused(endpoint: Endpoint) -> None:
    red, blue = endpoint.ids["red.png"], endpoint.ids["blue.png"]
    good = endpoint.link(red)
    query = parse_qs(urlsplit(good).query)
    exp, sig = query["exp"][0], query["sig"][0]
    refused = {
        "no signature": f"{endpoint.url}/images/{red}",
        "forged signature": f"{endpoint.url}/images/{red}?exp={exp}&sig={'0' * 64}",
        "signed with another secret": endpoint.link(red, PreviewSigner("not-the-secret", 3600)),
        "expiry pushed later": f"{endpoint.url}/images/{red}?exp={int(exp) + 3600}&sig={sig}",
        "another picture's signature": f"{endpoint.url}/images/{blue}?exp={exp}&sig={sig}",
        "expired": endpoint.link(red, PreviewSigner(PREVIEW_SECRET, -10)),
        "not a number": f"{endpoint.url}/images/{red}?exp=soon&sig={sig}",
    }
    for what, url in refused.items():
        response = get(url)
        assert response.status_code == 403, what
        assert response.headers["Content-Type"].startswith("text/plain"), what


def test_a_link_replayed_after_it_expired_is_refused(endpoint: Endpoint) -> None:
    """Slack fetches a link again whenever it shows the message, so a link is reusable until
    it expires, and no longer."""
    now = [1_000_000.0]
    signer = PreviewSigner(PREVIEW_SECRET, 60, clock=lambda: now[0])
    expires, signature = signer.sign(endpoint.ids["red.png"])
    # The endpoint checks against the real clock; this link expired long ago.
    link = f"{endpoint.url}/images/{endpoint.ids['red.png']}?exp={expires}&sig={signature}"
    for _ in range(3):
        assert get(link).status_code == 403
    fresh = endpoint.link(endpoint.ids["red.png"])
    assert [get(fresh).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize("where", ["dot-dot", "absolute", "symlink"])
def test_an_entry_rewritten_to_point_outside_after_indexing_is_never_served(
    endpoint: Endpoint, where: str
) -> None:
    doc_id = endpoint.ids["green.png"]
    secret = endpoint.outside / "secret.png"
    if where == "dot-dot":
        _rewrite_path(endpoint.data_dir, doc_id, "../outside/secret.png")
    elif where == "absolute":
        _rewrite_path(endpoint.data_dir, doc_id, str(secret))
    else:  # the entry is unchanged; the file it names became a link leading out
        (endpoint.root / "green.png").unlink()
        (endpoint.root / "green.png").symlink_to(secret)
    response = get(endpoint.link(doc_id))
    assert response.status_code == 403
    assert response.content == b"not available\n"
