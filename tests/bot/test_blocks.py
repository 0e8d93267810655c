"""The Block Kit renderer stays inside Slack's limits whatever the paths and queries are."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.blocks import (
    MAX_QUERY_CHARS,
    MAX_RESULTS_PER_MESSAGE,
    PICTURES_REFUSED,
    home_view,
    model_label,
    results_message,
    sentence_message,
    shared_message,
    usage_message,
    without_images,
)
from bot.payloads import Page, SharedResult
from bot.previews import Previews
from findimage.documents import ModelInfo, SearchHit, StoreStatus
from tests.support.block_kit import buttons, check_home, check_message
from tests.support.documents import make_document


def hit(path: str, score: float = 0.8) -> SearchHit:
    return SearchHit(make_document(path), score)


def test_a_full_page_of_long_paths_and_a_long_query_fits_slacks_limits() -> None:
    long_folder = "ä/" * 1500
    hits = [hit(f"{long_folder}<b>&{n}.jpg") for n in range(MAX_RESULTS_PER_MESSAGE + 5)]
    query = "ß" * MAX_QUERY_CHARS
    page = Page(k=MAX_RESULTS_PER_MESSAGE, text=query, folder="f" * MAX_QUERY_CHARS)
    previews = Previews(
        sources={h.document.id: {"image_url": "https://bot.example/images/x"} for h in hits},
        notice="a notice",
    )

    message = results_message(hits, "*heading*", page, previews, has_more=True, shareable=True)

    check_message(message)
    assert len(message["blocks"]) <= 50
    assert sum(b["type"] == "image" for b in message["blocks"]) == MAX_RESULTS_PER_MESSAGE
    texts = [b["text"] for b in message["blocks"] if b["type"] == "section"]
    assert all(text["type"] == "plain_text" for text in texts), "paths are never mrkdwn"
    assert any("<b>&0.jpg  ·  score 0.800  ·  file date " in text["text"] for text in texts)
    assert Page.from_value(buttons(message)[-1]["value"]) == page.next()


def test_photo_answers_have_no_share_or_more_buttons() -> None:
    message = results_message(
        [hit("a.jpg"), hit("b.jpg")], "h", Page(k=2), Previews(), has_more=False, shareable=False
    )

    check_message(message)
    assert [b["text"]["text"] for b in buttons(message)] == ["More like this"] * 2


def test_other_messages_and_the_home_view_fit_the_limits() -> None:
    status = StoreStatus(
        backend="embedded",
        count=3,
        models=ModelInfo("clip", "clip-multilingual", 512),
        last_indexed_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        location="/data",
    )
    check_message(usage_message())
    check_message(sentence_message("The index is empty: run `findimage index` first."))
    check_message(shared_message(SharedResult("a", "a.jpg", 0.5), "U1", None))
    home = home_view(status)
    check_home(home)
    assert "2024-05-01 12:30 UTC" in str(home)
    check_home(home_view(None, problem="Elasticsearch cannot be reached."))


@pytest.mark.parametrize(
    "name", ["a*b*c.jpg", "snake_case_name_.png", "~tilde~.jpg", "tick`s`.png"]
)
def test_mrkdwn_characters_in_a_file_name_are_shown_as_they_are(name: str) -> None:
    found = hit(f"trips/{name}")
    message = results_message([found], f"Pictures like {name}", Page(k=1), Previews(), False, True)

    check_message(message)
    heading, line = message["blocks"][0]["text"], message["blocks"][1]["text"]
    assert heading == {"type": "plain_text", "text": f"Pictures like {name}", "emoji": False}
    assert line["type"] == "plain_text"
    assert line["text"] == (
        f"1. trips/{name}  ·  score 0.800  ·  file date 1970-01-01  ·  id {found.document.id[:8]}"
    )


def test_a_message_without_its_pictures_keeps_everything_else_and_says_why() -> None:
    hits = [hit("a.jpg"), hit("b.jpg")]
    previews = Previews(sources={h.document.id: {"image_url": "https://x/i"} for h in hits})
    message = results_message(hits, "h", Page(k=2), previews, has_more=True, shareable=True)

    bare = without_images(message)

    assert [b for b in bare["blocks"] if b["type"] == "image"] == []
    assert len(bare["blocks"]) == len(message["blocks"]) - 2 + 1
    assert PICTURES_REFUSED in json.dumps(bare["blocks"])
    assert buttons(bare) == buttons(message)
    assert without_images(bare) is bare


def test_the_home_tab_names_local_model_folders_without_the_servers_paths() -> None:
    assert model_label("/srv/models/clip-ViT-B-32") == "clip-ViT-B-32"
    assert model_label("./models/tiny") == "tiny"
    assert model_label("sentence-transformers/clip-ViT-B-32-multilingual-v1") == (
        "sentence-transformers/clip-ViT-B-32-multilingual-v1"
    )
