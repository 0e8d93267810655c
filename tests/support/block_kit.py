"""Slack's documented Block Kit limits, checked on what the bot actually sends."""

from __future__ import annotations

from typing import Any

LIMITS = {
    "message_blocks": 50,
    "home_blocks": 100,
    "section_text": 3000,
    "plain_text": 2000,
    "button_text": 75,
    "button_value": 2000,
    "action_id": 255,
    "block_id": 255,
    "image_url": 3000,
    "fallback_text": 40000,
}


def check_message(message: dict[str, Any]) -> None:
    """Assert a message payload (chat.postMessage, response URL) is within Slack's limits."""
    blocks = message.get("blocks", [])
    assert message.get("text"), "a message needs fallback text for notifications"
    assert len(message["text"]) <= LIMITS["fallback_text"]
    assert len(blocks) <= LIMITS["message_blocks"], f"{len(blocks)} blocks in a message"
    _check_blocks(blocks)


def check_home(view: dict[str, Any]) -> None:
    assert view["type"] == "home"
    assert len(view["blocks"]) <= LIMITS["home_blocks"]
    _check_blocks(view["blocks"])


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def _check_blocks(blocks: list[dict[str, Any]]) -> None:
    action_ids: list[str] = []
    block_ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids)), f"repeated block_id in {block_ids}"
    for block in blocks:
        assert len(block.get("block_id", "")) <= LIMITS["block_id"]
        match block["type"]:
            case "section":
                if "text" in block:
                    assert len(block["text"]["text"]) <= LIMITS["section_text"]
                for field in block.get("fields", []):
                    assert len(field["text"]) <= LIMITS["plain_text"]
                assert "text" in block or "fields" in block
            case "image":
                assert ("image_url" in block) != ("slack_file" in block), block
                assert len(block.get("image_url", "")) <= LIMITS["image_url"]
                assert 0 < len(block["alt_text"]) <= LIMITS["plain_text"]
                assert len(block["title"]["text"]) <= LIMITS["plain_text"]
                assert block["title"]["type"] == "plain_text"
            case "actions":
                assert 0 < len(block["elements"]) <= 25
                for element in block["elements"]:
                    assert element["type"] == "button"
                    assert len(element["text"]["text"]) <= LIMITS["button_text"]
                    assert len(element["value"]) <= LIMITS["button_value"]
                    assert len(element["action_id"]) <= LIMITS["action_id"]
                    action_ids.append(element["action_id"])
            case "context":
                assert 0 < len(block["elements"]) <= 10
            case "header":
                assert len(block["text"]["text"]) <= 150
            case "divider":
                pass
            case other:
                raise AssertionError(f"unexpected block type {other}")
    assert len(action_ids) == len(set(action_ids)), f"repeated action_id in {action_ids}"
