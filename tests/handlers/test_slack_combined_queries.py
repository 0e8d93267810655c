"""Combined queries in Slack: `/findimage 2:beach + like:3f2a - people`, and a photo sent
with `+ …` or `- …` terms. Slash commands cannot be used in message threads (Slack's
limitations, quoted in https://github.com/idkclub/dicebot/pull/62), so a photo and words
travel together in one message to the bot instead of a command replying to a photo."""

from __future__ import annotations

from typing import Any

from bot.blocks import usage_message
from findimage.query import SYNTAX, Term
from findimage.search import SearchRequest
from tests.support.pictures import draw_shape, encode
from tests.support.searches import picture_request, query_request, text_request
from tests.support.slack_answers import DM, ask, posted_in_thread, result_paths
from tests.support.slack_api import BOT_USER_ID, FakeSlack
from tests.support.slack_bot import Bot
from tests.support.slack_requests import mention_event, message_event

CHANNEL = "C0000002"


def _sentence(message: dict[str, Any]) -> str:
    [block] = message["blocks"]
    return block["text"]["text"]


def _pictures_shown(message: dict[str, Any]) -> list[str]:
    """An answer in a thread has no Share buttons: its pictures' titles give the order."""
    return [block["title"]["text"] for block in message["blocks"] if block["type"] == "image"]


def test_a_combined_command_answers_the_weighted_sum_without_the_liked_picture(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    (liked,) = bot.service.search(text_request("green triangle", k=1)).hits
    text = f"2:red circle + like:{liked.document.id[:8]} - blue"
    expected = bot.service.search(query_request(text, k=5)).hits

    message = ask(bot, fake_slack, text, "combined")

    assert message["blocks"][0]["text"]["text"] == f"Results for “{text}”"
    assert result_paths(message) == [hit.document.path for hit in expected]
    assert liked.document.path not in result_paths(message)


def test_options_and_terms_mix_and_a_bad_query_is_one_sentence_with_the_syntax(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    message = ask(bot, fake_slack, "k:2 red circle - 0.5:square in:trips", "mixed")
    assert len(result_paths(message)) == 2
    assert all(path.startswith("trips/") for path in result_paths(message))

    wrong = ask(bot, fake_slack, "beach +", "dangling")
    assert _sentence(wrong) == f"A + or - needs a term on each side. {SYNTAX}."
    unknown = ask(bot, fake_slack, "like:ffff0000 + beach", "unknown")
    assert _sentence(unknown) == "No picture with id ffff0000 is in the index."


def test_the_usage_lists_the_combined_syntax() -> None:
    lines = [block["text"]["text"] for block in usage_message()["blocks"]]
    assert any("2:beach + like:3f2a9c1b - people" in line for line in lines)
    assert any("+ at night - people" in line for line in lines)


def test_words_with_a_photo_steer_it_and_other_words_are_a_comment(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    photo = encode(draw_shape("green", "triangle", size=(77, 81), offset=3), "JPEG")
    steered = (Term("picture", "holiday.jpg"), Term("text", "red circle", 2.0))
    expected = bot.service.search(SearchRequest(steered, k=5, pictures={"holiday.jpg": photo})).hits
    alone = bot.service.search(picture_request(photo, "holiday.jpg", k=5)).hits
    assert [h.document.path for h in expected] != [h.document.path for h in alone]

    event = message_event(
        DM, files=[fake_slack.add_file("holiday.jpg", photo, "image/jpeg")], text="+ 2:red circle"
    )
    assert bot.sender.event(event).status_code == 200
    [answer] = posted_in_thread(fake_slack, event["ts"])
    # Slack checks a posted message's pictures before it answers: let that finish.
    bot.finish_work()
    assert answer["blocks"][0]["text"]["text"] == "Pictures like holiday.jpg + 2:red circle"
    assert _pictures_shown(answer) == [hit.document.path for hit in expected]

    # In a channel the words follow the mention; a question is a comment, not a query.
    asked = mention_event(CHANNEL, files=[fake_slack.add_file("again.jpg", photo, "image/jpeg")])
    asked["text"] = f"<@{BOT_USER_ID}> is this in the library?"
    assert bot.sender.event(asked).status_code == 200
    [plain] = posted_in_thread(fake_slack, asked["ts"])
    bot.finish_work()
    assert _pictures_shown(plain) == [hit.document.path for hit in alone]
