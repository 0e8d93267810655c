"""The HTTP side of the bot: Slack's request signatures, rate limits, and the preview endpoint."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from slack_sdk import WebClient

from bot.previews import PreviewSigner
from findimage.documents import ModelInfo, document_id
from findimage.stores.embedded import EmbeddedStore
from tests.support.block_kit import check_message
from tests.support.documents import make_document
from tests.support.pictures import draw_shape, save
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import PREVIEW_SECRET, Bot, BotFactory, IndexedLibrary
from tests.support.slack_requests import SlackSender, message_event

FIVE_MINUTES_AND_A_BIT = 5 * 60 + 30


def test_an_unsigned_request_is_rejected_and_not_answered(bot: Bot, fake_slack: FakeSlack) -> None:
    response = bot.sender.command("red circle", fake_slack.response_url("unsigned"), signed=False)

    assert response.status_code == 401
    # Work is handed to the workers before the ack is sent: once they are idle, anything the
    # request had started would have been answered.
    bot.finish_work()
    assert not fake_slack.calls("response")
    assert not fake_slack.calls("response-refused")


def test_a_request_signed_with_another_secret_is_rejected(bot: Bot, fake_slack: FakeSlack) -> None:
    impostor = SlackSender(bot.sender.events_url, secret="not-the-signing-secret")

    response = impostor.command("red circle", fake_slack.response_url("impostor"))

    assert response.status_code == 401


def test_a_timestamp_older_than_five_minutes_is_rejected(bot: Bot, fake_slack: FakeSlack) -> None:
    old = int(time.time()) - FIVE_MINUTES_AND_A_BIT

    response = bot.sender.command("red circle", fake_slack.response_url("old"), timestamp=old)

    assert response.status_code == 401


def test_the_url_verification_challenge_is_answered(bot: Bot) -> None:
    body = {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    response = bot.sender.post(
        json.dumps({**body, "type": "url_verification"}).encode(), "application/json"
    )

    assert response.status_code == 200
    assert body["challenge"] in response.text


def test_a_rate_limited_call_is_retried_after_retry_after(bot: Bot, fake_slack: FakeSlack) -> None:
    fake_slack.rate_limited_once.add("chat.postMessage")

    bot.sender.event(message_event("D0000321", text="hello"))

    first, second = fake_slack.wait_for("chat.postMessage", count=2)
    assert second.at - first.at >= 1.0, "Retry-After: 1 was not honored"
    assert second.params["channel"] == "D0000321"


@pytest.fixture
def signed_url(bot: Bot, slack_library: IndexedLibrary):
    def make(doc_id: str, clock=time.time) -> str:
        expires, signature = PreviewSigner(PREVIEW_SECRET, 600, clock).sign(doc_id)
        return f"{bot.url}/images/{doc_id}?exp={expires}&sig={signature}"

    return make


def any_doc_id(slack_library: IndexedLibrary) -> str:
    return next(iter(slack_library.store.fingerprints()))


def test_the_preview_endpoint_serves_a_jpeg_for_a_valid_signature(
    signed_url, slack_library: IndexedLibrary
) -> None:
    response = requests.get(signed_url(any_doc_id(slack_library)), timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"


def test_the_preview_endpoint_refuses_a_bad_signature(
    signed_url, slack_library: IndexedLibrary
) -> None:
    url = signed_url(any_doc_id(slack_library))
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")

    assert requests.get(tampered, timeout=10).status_code == 403
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403


def test_the_preview_endpoint_refuses_a_signature_for_another_picture(
    signed_url, slack_library: IndexedLibrary
) -> None:
    first, second, *_ = slack_library.store.fingerprints()
    query = urlsplit(signed_url(first)).query
    other = signed_url(second).split("?")[0] + "?" + query

    assert requests.get(other, timeout=10).status_code == 403


def test_the_preview_endpoint_refuses_an_expired_link(
    signed_url, slack_library: IndexedLibrary
) -> None:
    an_hour_ago = time.time() - 3600

    url = signed_url(any_doc_id(slack_library), clock=lambda: an_hour_ago)

    assert requests.get(url, timeout=10).status_code == 403


def test_the_preview_endpoint_never_reads_outside_the_store(
    start_bot: BotFactory, slack_library: IndexedLibrary, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    root, secret = tmp_path / "store", tmp_path / "secret.png"
    save(draw_shape("red", "circle"), secret)
    save(draw_shape("blue", "circle"), root / "inside.png")
    os.symlink(secret, root / "link.png")
    store = EmbeddedStore(tmp_path / "data")
    encoder = slack_library.image_encoder
    store.record_models(ModelInfo(encoder.model_name, encoder.model_name, encoder.dims))
    vector = np.ones(encoder.dims, dtype=np.float32)
    vector /= np.linalg.norm(vector)
    store.upsert(
        [(make_document(path), vector) for path in ("../secret.png", "link.png", "inside.png")]
    )
    try:
        bot = start_bot(service=slack_library.service(store=store), library=root)

        def fetch(path: str) -> int:
            doc_id = document_id(path)
            expires, signature = PreviewSigner(PREVIEW_SECRET, 600).sign(doc_id)
            url = f"{bot.url}/images/{doc_id}?exp={expires}&sig={signature}"
            return requests.get(url, timeout=10).status_code

        assert fetch("../secret.png") == 403
        assert fetch("link.png") == 403
        assert fetch("inside.png") == 200
        assert fetch("missing.png") == 404
    finally:
        store.close()


def test_other_paths_are_not_found(bot: Bot) -> None:
    assert requests.get(f"{bot.url}/", timeout=10).status_code == 404
    assert requests.get(f"{bot.url}/slack/events", timeout=10).status_code == 404


def test_a_bot_token_slack_refuses_stops_the_start_with_a_sentence(
    slack_library: IndexedLibrary, fake_slack: FakeSlack
) -> None:
    from bot.app import create_app
    from findimage.errors import ConfigError

    wrong = WebClient(token="xoxb-revoked", base_url=fake_slack.api_url)

    with pytest.raises(ConfigError) as refused:
        create_app(slack_library.settings, slack_library.service(), client=wrong)

    assert str(refused.value) == (
        "Slack refused SLACK_BOT_TOKEN: copy the bot token again from the Slack app."
    )
    assert "xoxb-revoked" not in str(refused.value)


def test_the_web_api_url_setting_is_used_for_auth_test_and_every_call_after(
    slack_library: IndexedLibrary, fake_slack: FakeSlack
) -> None:
    from bot.app import build_web_client, create_app

    settings = slack_library.settings.model_copy(update={"slack_api_url": fake_slack.api_url})

    client = build_web_client(settings)
    create_app(settings, slack_library.service(), client=client)

    assert client.base_url == fake_slack.api_url
    [auth] = fake_slack.calls("auth.test")
    assert auth.headers["Authorization"].startswith("Bearer ")


def test_a_picture_gone_since_the_last_index_gets_no_image_block_and_a_refused_answer_is_sent_again(
    start_bot: BotFactory,
    slack_library: IndexedLibrary,
    fake_slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Signed-link mode: Slack fetches every image_url and refuses the whole message when one
    fails, so a picture deleted since indexing gets no link; one that is there but cannot be
    rendered makes Slack refuse the answer, which then goes again without pictures."""
    root = tmp_path / "store"
    save(draw_shape("blue", "circle"), root / "fine.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    store = EmbeddedStore(tmp_path / "data")
    encoder = slack_library.image_encoder
    store.record_models(ModelInfo(encoder.model_name, encoder.model_name, encoder.dims))
    vector = np.ones(encoder.dims, dtype=np.float32)
    vector /= np.linalg.norm(vector)
    store.upsert([(make_document(p), vector) for p in ("gone.png", "broken.png", "fine.png")])
    try:
        bot = start_bot(service=slack_library.service(store=store), library=root)

        bot.sender.command("k:3 blue circle", fake_slack.response_url("gone"))

        [answer] = fake_slack.wait_for("response", where=lambda r: r.path.endswith("/gone"))
    finally:
        store.close()
    [refused] = fake_slack.calls("response-refused")
    first_images = [b["title"]["text"] for b in refused.params["blocks"] if b["type"] == "image"]
    assert sorted(first_images) == ["broken.png", "fine.png"], "no link for the missing picture"
    check_message(answer.params)
    assert [b for b in answer.params["blocks"] if b["type"] == "image"] == []
    assert all(path in answer.params["text"] for path in ("gone.png", "broken.png", "fine.png"))
    assert "Slack refused a response_url post: HTTP 400 invalid_blocks" in caplog.text
