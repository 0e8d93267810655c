"""Slack's documented Block Kit rules for the blocks the bot sends, as one validator.

The Web API stand-in refuses a message that breaks them with `invalid_blocks`, as Slack does,
and tests can also check a rendered message directly with `check_message`.

Sources (Slack's Block Kit reference):
- 50 blocks per message, 100 per Home tab view:
  https://docs.slack.dev/reference/block-kit/blocks
- text object: `text` 1 to 3000 characters, `emoji` only on plain_text:
  https://docs.slack.dev/reference/block-kit/composition-objects/text-object
- section: text up to 3000, at most 10 fields of up to 2000, text or fields required:
  https://docs.slack.dev/reference/block-kit/blocks/section-block
- image: exactly one of image_url (up to 3000) and slack_file; alt_text required, up to 2000;
  title plain_text up to 2000: https://docs.slack.dev/reference/block-kit/blocks/image-block
  and https://docs.slack.dev/reference/block-kit/composition-objects/slack-file-object
- actions: 1 to 25 elements: https://docs.slack.dev/reference/block-kit/blocks/actions-block
- button: text plain_text up to 75, action_id up to 255 and unique in its block, value up to
  2000, url up to 3000: https://docs.slack.dev/reference/block-kit/block-elements/button-element
- context: 1 to 10 elements: https://docs.slack.dev/reference/block-kit/blocks/context-block
- header: plain_text up to 150: https://docs.slack.dev/reference/block-kit/blocks/header-block
- block_id up to 255 and unique in a message (same pages).
"""

from __future__ import annotations

from typing import Any

LIMITS = {
    "message_blocks": 50,
    "home_blocks": 100,
    "text": 3000,
    "section_text": 3000,
    "field_text": 2000,
    "fields": 10,
    "plain_text": 2000,
    "button_text": 75,
    "button_value": 2000,
    "action_id": 255,
    "block_id": 255,
    "image_url": 3000,
    "header_text": 150,
    "actions_elements": 25,
    "context_elements": 10,
    "fallback_text": 40000,
}


def message_errors(message: dict[str, Any]) -> list[str]:
    """Slack's complaints about a message payload, in its `error [json-pointer:…]` form."""
    blocks = message.get("blocks")
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errors = []
    if len(blocks) > LIMITS["message_blocks"]:
        errors.append(
            f"no more than {LIMITS['message_blocks']} items allowed [json-pointer:/blocks]"
        )
    return errors + _blocks_errors(blocks)


def view_errors(view: dict[str, Any]) -> list[str]:
    errors = [] if view.get("type") == "home" else ["unsupported view type [json-pointer:/type]"]
    blocks = view.get("blocks", [])
    if len(blocks) > LIMITS["home_blocks"]:
        errors.append(f"no more than {LIMITS['home_blocks']} items allowed [json-pointer:/blocks]")
    return errors + _blocks_errors(blocks)


def check_message(message: dict[str, Any]) -> None:
    """Assert a message payload (chat.postMessage, response URL) is one Slack accepts."""
    assert message.get("text"), "a message needs fallback text for notifications"
    assert len(message["text"]) <= LIMITS["fallback_text"]
    assert message_errors(message) == []


def check_home(view: dict[str, Any]) -> None:
    assert view_errors(view) == []


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def _blocks_errors(blocks: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"/blocks/{index}"
        block_id = block.get("block_id")
        if block_id is not None:
            if not 0 < len(block_id) <= LIMITS["block_id"]:
                errors.append(f"must be 1 to 255 characters [json-pointer:{where}/block_id]")
            if block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
        check = _BLOCK_RULES.get(block.get("type", ""))
        if check is None:
            errors.append(f"unsupported block type [json-pointer:{where}/type]")
        else:
            errors += check(block, where)
    return errors


def _text_errors(text: Any, where: str, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
        return [f"must be a text object [json-pointer:{where}]"]
    if plain_only and text["type"] != "plain_text":
        return [f"must be plain_text [json-pointer:{where}/type]"]
    errors = []
    value = text.get("text")
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        errors.append(f"must be 1 to {limit} characters [json-pointer:{where}/text]")
    if "emoji" in text and text["type"] != "plain_text":
        errors.append(f"emoji is only for plain_text [json-pointer:{where}/emoji]")
    return errors


def _section(block: dict[str, Any], where: str) -> list[str]:
    if "text" not in block and "fields" not in block:
        return [f"must provide text or fields [json-pointer:{where}]"]
    errors = []
    if "text" in block:
        errors += _text_errors(block["text"], f"{where}/text", LIMITS["section_text"])
    fields = block.get("fields", [])
    if len(fields) > LIMITS["fields"]:
        errors.append(f"no more than 10 items allowed [json-pointer:{where}/fields]")
    for n, field in enumerate(fields):
        errors += _text_errors(field, f"{where}/fields/{n}", LIMITS["field_text"])
    return errors


def _image(block: dict[str, Any], where: str) -> list[str]:
    errors = []
    if ("image_url" in block) == ("slack_file" in block):
        errors.append(f"must provide exactly one of image_url or slack_file [json-pointer:{where}]")
    url = block.get("image_url")
    if url is not None and not 0 < len(url) <= LIMITS["image_url"]:
        errors.append(f"must be 1 to 3000 characters [json-pointer:{where}/image_url]")
    slack_file = block.get("slack_file")
    if slack_file is not None and ("id" in slack_file) == ("url" in slack_file):
        errors.append(f"must provide exactly one of id or url [json-pointer:{where}/slack_file]")
    alt = block.get("alt_text")
    if not isinstance(alt, str) or not 0 < len(alt) <= LIMITS["plain_text"]:
        errors.append(f"must be 1 to 2000 characters [json-pointer:{where}/alt_text]")
    if "title" in block:
        errors += _text_errors(block["title"], f"{where}/title", LIMITS["plain_text"], True)
    return errors


def _actions(block: dict[str, Any], where: str) -> list[str]:
    elements = block.get("elements", [])
    if not 0 < len(elements) <= LIMITS["actions_elements"]:
        return [f"must hold 1 to 25 elements [json-pointer:{where}/elements]"]
    errors = []
    action_ids: set[str] = set()
    for n, element in enumerate(elements):
        at = f"{where}/elements/{n}"
        if element.get("type") != "button":
            errors.append(f"unsupported element type [json-pointer:{at}/type]")
            continue
        errors += _text_errors(element.get("text"), f"{at}/text", LIMITS["button_text"], True)
        action_id = element.get("action_id", "")
        if len(action_id) > LIMITS["action_id"]:
            errors.append(f"must be at most 255 characters [json-pointer:{at}/action_id]")
        if action_id and action_id in action_ids:
            errors.append(f"duplicate action_id [json-pointer:{at}/action_id]")
        action_ids.add(action_id)
        if len(element.get("value", "")) > LIMITS["button_value"]:
            errors.append(f"must be at most 2000 characters [json-pointer:{at}/value]")
    return errors


def _context(block: dict[str, Any], where: str) -> list[str]:
    elements = block.get("elements", [])
    if not 0 < len(elements) <= LIMITS["context_elements"]:
        return [f"must hold 1 to 10 elements [json-pointer:{where}/elements]"]
    errors = []
    for n, element in enumerate(elements):
        errors += _text_errors(element, f"{where}/elements/{n}", LIMITS["text"])
    return errors


def _header(block: dict[str, Any], where: str) -> list[str]:
    return _text_errors(block.get("text"), f"{where}/text", LIMITS["header_text"], True)


_BLOCK_RULES = {
    "section": _section,
    "image": _image,
    "actions": _actions,
    "context": _context,
    "header": _header,
    "divider": lambda block, where: [],
}
