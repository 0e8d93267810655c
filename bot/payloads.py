"""What the buttons under results carry back to the listeners: their action ids and values.

The renderer (bot/blocks.py) writes these into each button; the listeners (handlers/actions.py)
read them back from the block_actions payload Slack sends when one is pressed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from findimage.filters import Filters, parse_date, parse_place

# Slack's Block Kit reference: a button's value holds at most 2000 characters.
MAX_BUTTON_VALUE = 2000

# "More like this" and "Share in channel" are numbered by rank (`findimage_like:3`), as a
# message's action ids must be unique; "More results" is one per message.
ACTION_LIKE = "findimage_like"
ACTION_SHARE = "findimage_share"
ACTION_MORE = "findimage_more"


@dataclass(frozen=True)
class Page:
    """A query and the window of results to show; More results carries the next one."""

    k: int
    text: str | None = None
    like: str | None = None
    folder: str | None = None
    offset: int = 0
    filters: Filters = field(default_factory=Filters)

    def next(self) -> Page:
        return replace(self, offset=self.offset + self.k)

    def to_value(self) -> str:
        data: dict[str, Any] = {
            "k": self.k,
            "text": self.text,
            "like": self.like,
            "folder": self.folder,
            "offset": self.offset,
            "after": f"{self.filters.after:%Y-%m-%d}" if self.filters.after else None,
            "before": f"{self.filters.before:%Y-%m-%d}" if self.filters.before else None,
            "near": str(self.filters.near) if self.filters.near else None,
        }
        return _value({key: value for key, value in data.items() if value not in (None, 0)})

    @classmethod
    def from_value(cls, value: str) -> Page:
        data = json.loads(value)
        after, before, near = data.get("after"), data.get("before"), data.get("near")
        return cls(
            k=int(data["k"]),
            text=data.get("text"),
            like=data.get("like"),
            folder=data.get("folder"),
            offset=int(data.get("offset", 0)),
            filters=Filters(
                after=parse_date(after, "after:") if after else None,
                before=parse_date(before, "before:") if before else None,
                near=parse_place(near) if near else None,
            ),
        )


@dataclass(frozen=True)
class SharedResult:
    """What a Share in channel button needs to post its result again for everyone."""

    doc_id: str
    path: str
    score: float

    def to_value(self) -> str:
        return _value({"id": self.doc_id, "path": self.path, "score": round(self.score, 4)})

    @classmethod
    def from_value(cls, value: str) -> SharedResult:
        data = json.loads(value)
        return cls(data["id"], data["path"], float(data["score"]))


def _value(data: dict[str, Any]) -> str:
    value = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"a button value of {len(value)} characters is over Slack's limit")
    return value
