"""The one Block Kit renderer: results, usage, errors and the Home tab, within Slack's limits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from bot.payloads import ACTION_LIKE, ACTION_MORE, ACTION_SHARE, Page, SharedResult
from bot.previews import ImageSource, Previews
from findimage.documents import SearchHit, StoreStatus
from findimage.filters import picture_date

# Limits from Slack's Block Kit reference.
MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_PLAIN_TEXT = 2000
MAX_FALLBACK_TEXT = 3000

PICTURES_REFUSED = "Slack would not show the pictures of this answer, so here are the paths."

BLOCKS_PER_RESULT = 3  # the path and score, the picture, the buttons
# A heading and a notice above the results, the More results button below them.
MAX_RESULTS_PER_MESSAGE = (MAX_MESSAGE_BLOCKS - 3) // BLOCKS_PER_RESULT

# CLIP reads at most 77 tokens, so longer queries lose nothing by being cut here, and every
# button value that carries a query stays far below MAX_BUTTON_VALUE (bot/payloads.py).
MAX_QUERY_CHARS = 500
MAX_SHOWN_PATH_CHARS = 500

COMMAND = "/findimage"
USAGE_LINES = (
    f"*`{COMMAND} snowy mountain`* finds the pictures closest to a description, in any language.",
    f"*`{COMMAND} k:10 beach at sunset`* shows 10 results (up to {MAX_RESULTS_PER_MESSAGE}).",
    f"*`{COMMAND} in:marketing/2024 logo`* looks only in that folder and below.",
    f"*`{COMMAND} after:2024-06 before:2025 near:48.85,2.35,10 beach`* keeps pictures taken "
    "from June 2024 and before 2025 (by the file's date where a picture has no EXIF date), "
    "within 10 km of that point (by its GPS; pictures without one are left out).",
    f"*`{COMMAND} 2:beach + like:3f2a9c1b - people`* combines terms: + adds one, - leaves one "
    "out, a number and a colon weighs one, and like: takes the id shown beside a result.",
    "*Send me a photo* in a direct message, or mention me with a photo in a channel, "
    "to find similar pictures and to learn whether it is already in the library; "
    "write `+ at night - people` with the photo to steer the search.",
    "Answers to the command are visible only to you until you press *Share in channel*.",
)

Message = dict[str, Any]
SHORT_ID_LENGTH = 8


def results_message(
    hits: list[SearchHit],
    heading: str,
    page: Page,
    previews: Previews,
    has_more: bool,
    shareable: bool,
    notices: Sequence[str | None] = (),
) -> Message:
    """The results, best first: path and score, preview, More like this and Share buttons.

    `heading` and the paths are plain text: library paths and queries hold `*`, `_`, `~` and
    backticks that mrkdwn would read as formatting (it has no escape for them).
    """
    hits = hits[:MAX_RESULTS_PER_MESSAGE]
    blocks: list[dict[str, Any]] = [_plain_section(heading)]
    shown_notices = [notice for notice in (*notices, previews.notice) if notice]
    if shown_notices:
        blocks.append(_context(" ".join(escape(notice) for notice in shown_notices)))
    for rank, hit in enumerate(hits, start=page.offset + 1):
        doc = hit.document
        day, origin = picture_date(doc)
        dated = f"taken {day:%Y-%m-%d}" if origin == "taken" else f"file date {day:%Y-%m-%d}"
        line = f"{rank}. {shown_path(doc.path)}  ·  score {hit.score:.3f}  ·  {dated}"
        blocks.append(_plain_section(f"{line}  ·  id {short_id(doc.id)}"))
        source = previews.sources.get(doc.id)
        if source:
            blocks.append(image_block(source, doc.path))
        buttons = [
            _button(
                "More like this",
                f"{ACTION_LIKE}:{rank}",
                Page(k=page.k, like=doc.id, folder=page.folder, filters=page.filters).to_value(),
            )
        ]
        if shareable:
            shared = SharedResult(doc.id, shown_path(doc.path), hit.score)
            buttons.append(_button("Share in channel", f"{ACTION_SHARE}:{rank}", shared.to_value()))
        blocks.append({"type": "actions", "block_id": f"result:{rank}", "elements": buttons})
    if has_more:
        blocks.append(
            {
                "type": "actions",
                "block_id": "pages",
                "elements": [_button("More results", ACTION_MORE, page.next().to_value())],
            }
        )
    paths = ", ".join(hit.document.path for hit in hits)
    return {"text": _fallback(f"{heading} {paths}"), "blocks": blocks}


def short_id(doc_id: str) -> str:
    """The start of an id that like: takes: 8 hex digits rarely name two pictures, and when
    they do, the search asks for more of the id."""
    return doc_id[:SHORT_ID_LENGTH]


def shared_message(result: SharedResult, user_id: str, source: ImageSource | None) -> Message:
    """One result posted for everyone, naming who shared it."""
    blocks: list[dict[str, Any]] = [
        _section(f"<@{user_id}> shared:"),
        _plain_section(shown_path(result.path)),
    ]
    if source:
        blocks.append(image_block(source, result.path))
    blocks.append(_context(share_line(result)))
    return {"text": _fallback(f"Shared picture: {result.path}"), "blocks": blocks}


def share_comment(result: SharedResult, user_id: str) -> str:
    """The comment of a shared picture uploaded into the channel (mrkdwn, path in code)."""
    path = shown_path(result.path).replace("`", "'")
    return f"<@{user_id}> shared `{escape(path)}` · {share_line(result)}"


def share_line(result: SharedResult) -> str:
    return f"score {result.score:.3f} · found with {COMMAND}"


def without_images(message: Message) -> Message:
    """The same message without its image blocks, for when Slack refuses one of them."""
    blocks = message.get("blocks", [])
    kept = [block for block in blocks if block.get("type") != "image"]
    if len(kept) == len(blocks):
        return message
    notice = _context(escape(PICTURES_REFUSED))
    return {**message, "blocks": [*kept[:1], notice, *kept[1:]][:MAX_MESSAGE_BLOCKS]}


def usage_message() -> Message:
    blocks = [_section("*How to use findimage*"), *(_section(line) for line in USAGE_LINES)]
    return {"text": f"Usage: {COMMAND} <description>", "blocks": blocks}


def sentence_message(sentence: str) -> Message:
    """One plain sentence: an error, a refusal, a suggestion."""
    return {"text": _fallback(sentence), "blocks": [_plain_section(sentence)]}


def home_view(status: StoreStatus | None, problem: str | None = None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "findimage"}},
        _section("Search the team's image library by description or by example photo."),
        {"type": "divider"},
        _section("*Index status*"),
    ]
    if status is not None:
        models = status.models
        last = (
            status.last_indexed_at.strftime("%Y-%m-%d %H:%M UTC")
            if status.last_indexed_at
            else "never"
        )
        fields = [
            f"*Backend*\n{escape(status.backend)}",
            f"*Pictures*\n{status.count}",
            f"*Last indexed*\n{last}",
            f"*Image model*\n{escape(model_label(models.image_model)) if models else '-'}",
            f"*Text model*\n{escape(model_label(models.text_model)) if models else '-'}",
        ]
        blocks.append(
            {"type": "section", "fields": [{"type": "mrkdwn", "text": text} for text in fields]}
        )
    if problem:
        blocks.append(_section(escape(problem)))
    blocks += [{"type": "divider"}, *usage_message()["blocks"]]
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def image_block(source: ImageSource, path: str) -> dict[str, Any]:
    label = _truncate(path, MAX_PLAIN_TEXT)
    return {
        "type": "image",
        **source,
        "alt_text": label,
        "title": {"type": "plain_text", "text": label},
    }


def model_label(name: str) -> str:
    """A model's name for people: a local folder's own name, never the server's paths."""
    if name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name:
        return PurePath(name.replace("\\", "/")).name or name
    return name


def shown_path(path: str) -> str:
    """A path short enough for any text field, keeping its end, where the file name is."""
    if len(path) <= MAX_SHOWN_PATH_CHARS:
        return path
    return "…" + path[-(MAX_SHOWN_PATH_CHARS - 1) :]


def escape(text: str) -> str:
    """Slack's three mrkdwn control characters, as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _truncate(text, MAX_SECTION_TEXT)},
    }


def _plain_section(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "plain_text", "text": _truncate(text, MAX_SECTION_TEXT), "emoji": False},
    }


def _context(text: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _truncate(text, MAX_PLAIN_TEXT)}],
    }


def _button(label: str, action_id: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }


def _fallback(text: str) -> str:
    return _truncate(text, MAX_FALLBACK_TEXT)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
