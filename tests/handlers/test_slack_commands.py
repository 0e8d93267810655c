"""`/findimage` end to end: signed slash commands in, response-URL answers out."""

from __future__ import annotations

import json
import time

import pytest
import requests

from bot.payloads import Page, SharedResult
from tests.support.block_kit import buttons, check_message
from tests.support.fitting import CountingTextEncoder
from tests.support.searches import like_request, text_request
from tests.support.slack_answers import (
    ACK_DEADLINE_SECONDS,
    answer_at,
    ask,
    button,
    image_blocks,
    result_paths,
)
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot, BotFactory, GatedTextEncoder, IndexedLibrary
from tests.support.slack_requests import USER_ID


@pytest.mark.parametrize(
    ("query", "best"),
    [("red circle", "red-circle-0000.png"), ("a blue square", "trips/2024/blue-square-0010.png")],
)
def test_search_ranks_the_described_picture_first(
    bot: Bot, fake_slack: FakeSlack, query: str, best: str
) -> None:
    """The trained tiny CLIP knows colored shapes: the library holds one of each."""
    message = ask(bot, fake_slack, query, f"rank-{best}")

    assert result_paths(message)[0] == best


def test_search_answers_privately_with_previews_and_buttons(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    expected = bot.service.search(text_request("red circle", k=5)).hits

    message = ask(bot, fake_slack, "red circle", "search")

    assert message["response_type"] == "ephemeral"
    assert result_paths(message) == [hit.document.path for hit in expected]
    images = image_blocks(message)
    assert [image["title"]["text"] for image in images] == [h.document.path for h in expected]
    assert all(image["image_url"].startswith(f"{bot.url}/images/") for image in images)
    preview = requests.get(images[0]["image_url"], timeout=10)
    assert preview.status_code == 200
    assert preview.headers["Content-Type"] == "image/jpeg"
    assert preview.content[:2] == b"\xff\xd8"

    likes = [b for b in buttons(message) if b["action_id"].startswith("findimage_like:")]
    assert [Page.from_value(b["value"]).like for b in likes] == [h.document.id for h in expected]
    more = Page.from_value(button(message, "findimage_more")["value"])
    assert more == Page(k=5, text="red circle", offset=5)


def test_more_results_shows_the_next_page(bot: Bot, fake_slack: FakeSlack) -> None:
    expected = bot.service.search(text_request("blue square", k=10)).hits
    first = ask(bot, fake_slack, "blue square", "page1")

    clicked = bot.sender.button(button(first, "findimage_more"), fake_slack.response_url("page2"))

    assert clicked.status_code == 200
    second = answer_at(fake_slack, "page2")
    assert result_paths(second) == [hit.document.path for hit in expected[5:10]]
    assert not set(result_paths(first)) & set(result_paths(second))
    assert second["replace_original"] is False
    assert "6. " in json.dumps(second["blocks"])


def test_more_like_this_searches_with_the_pictures_stored_vector(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    first = ask(bot, fake_slack, "green triangle", "like0")
    chosen = Page.from_value(button(first, "findimage_like:2")["value"]).like
    assert chosen is not None
    chosen_path = result_paths(first)[1]
    expected = bot.service.search(like_request(chosen, k=5)).hits

    bot.sender.button(button(first, "findimage_like:2"), fake_slack.response_url("like1"))

    similar = answer_at(fake_slack, "like1")
    assert result_paths(similar) == [hit.document.path for hit in expected]
    assert chosen_path not in result_paths(similar)


def test_share_in_channel_posts_that_one_result_for_everyone(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    first = ask(bot, fake_slack, "yellow square", "share0")
    shared = SharedResult.from_value(button(first, "findimage_share:3")["value"])

    bot.sender.button(button(first, "findimage_share:3"), fake_slack.response_url("share1"))

    posted = answer_at(fake_slack, "share1")
    assert posted["response_type"] == "in_channel"
    assert posted["replace_original"] is False
    text = json.dumps(posted["blocks"])
    assert f"<@{USER_ID}> shared" in text
    assert shared.path in text
    [image] = image_blocks(posted)
    assert image["image_url"].startswith(f"{bot.url}/images/{shared.doc_id}?")
    assert requests.get(image["image_url"], timeout=10).status_code == 200


def test_options_in_the_text_set_k_and_the_folder(bot: Bot, fake_slack: FakeSlack) -> None:
    message = ask(bot, fake_slack, "k:3 in:trips/ orange circle", "options")

    paths = result_paths(message)
    assert len(paths) == 3
    assert all(path.startswith("trips/") for path in paths)
    more = Page.from_value(button(message, "findimage_more")["value"])
    assert more == Page(k=3, text="orange circle", folder="trips", offset=3)


def test_help_and_an_empty_command_answer_with_usage_in_the_ack(bot: Bot) -> None:
    for text in ("", "help", "  HELP "):
        response = bot.sender.command(text, "http://127.0.0.1:9/never-used")
        assert response.status_code == 200
        usage = response.json()
        assert usage["response_type"] == "ephemeral"
        check_message(usage)
        assert "/findimage snowy mountain" in json.dumps(usage["blocks"])


def test_a_bad_option_is_explained_in_the_ack(bot: Bot) -> None:
    response = bot.sender.command("k:zero cats", "http://127.0.0.1:9/never-used")
    assert response.json()["text"] == "k: takes a number from 1 to 15, like k:10."


def test_nothing_above_the_minimum_score_suggests_rephrasing(
    start_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    strict = start_bot(min_score=1.0)

    message = ask(strict, fake_slack, "purple ring", "strict")

    assert "Nothing in the library is close to “purple ring”: try rephrasing" in message["text"]
    assert not buttons(message)


def test_an_empty_index_is_one_plain_sentence(
    start_bot: BotFactory, slack_library: IndexedLibrary, fake_slack: FakeSlack, tmp_path
) -> None:
    from findimage.stores.embedded import EmbeddedStore

    empty = EmbeddedStore(tmp_path / "empty")
    try:
        bot = start_bot(service=slack_library.service(store=empty))
        message = ask(bot, fake_slack, "red circle", "empty")
    finally:
        empty.close()
    assert message["text"] == "The index is empty: run `findimage index /path/to/pictures` first."


def test_a_slow_search_is_still_acknowledged_at_once(
    start_bot: BotFactory, slack_library: IndexedLibrary, fake_slack: FakeSlack
) -> None:
    slow = GatedTextEncoder(slack_library.text_encoder)
    bot = start_bot(service=slack_library.service(text_encoder=slow))
    try:
        started = time.monotonic()
        response = bot.sender.command("black square", fake_slack.response_url("slow"))
        elapsed = time.monotonic() - started

        assert response.status_code == 200
        assert elapsed < ACK_DEADLINE_SECONDS
        assert slow.entered.wait(timeout=10), "the search should have started"
        assert not fake_slack.calls("response"), "answered before the search could finish"
    finally:
        slow.gate.set()
    message = answer_at(fake_slack, "slow")
    assert len(result_paths(message)) == 5


def test_a_folder_that_holds_no_pictures_is_named_in_the_answer(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    message = ask(bot, fake_slack, "in:nosuchfolder red circle", "nofolder")

    assert message["text"].startswith("The library has no pictures in a folder “nosuchfolder”")
    assert not buttons(message)


def test_a_query_longer_than_the_text_model_reads_is_cut_and_says_so(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    """The trained tiny CLIP reads 32 tokens; 90 words would make it refuse the input."""
    long_query = " ".join(["a red circle"] * 30)

    message = ask(bot, fake_slack, long_query, "long")

    assert result_paths(message)[0] == "red-circle-0000.png"
    notice = message["blocks"][1]
    assert notice["type"] == "context"
    assert "too long for the text model (32 tokens at most)" in notice["elements"][0]["text"]


def test_a_query_is_fitted_to_the_text_model_once(
    start_bot: BotFactory, slack_library: IndexedLibrary, fake_slack: FakeSlack
) -> None:
    """The note that a query was cut and the search itself read one fitting of it."""
    # Loaded (exported, on first use) before the clock of the answer starts.
    slack_library.text_encoder.encode_texts(["warm up"])
    counting = CountingTextEncoder(slack_library.text_encoder)
    bot = start_bot(service=slack_library.service(text_encoder=counting))
    long_query = " ".join(["a blue square"] * 30)

    message = ask(bot, fake_slack, long_query, "fitted-once")

    assert counting.fitted == [long_query]
    notice = message["blocks"][1]
    assert "too long for the text model (32 tokens at most)" in notice["elements"][0]["text"]


def test_every_message_slack_refused_would_fail_here(bot: Bot, fake_slack: FakeSlack) -> None:
    """No answer in this module was refused by the stand-in's Block Kit checks."""
    ask(bot, fake_slack, "green circle", "valid")
    assert not fake_slack.calls("response-refused")
