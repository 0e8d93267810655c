"""Which pictures one of N indexing workers owns: `findimage index --shard K/N`.

A picture belongs to shard `int.from_bytes(sha256(path)[:8], "big") % N + 1`, where `path`
is its library-relative POSIX path as UTF-8 (the same string the index stores as `path`).
The rule reads nothing but the path, so it gives the same partition on every machine and in
every run, for folders and s3:// libraries alike, and every path falls in exactly one shard.
A missing picture's shard comes from its stored path, so each worker deletes only its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from findimage.errors import ConfigError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(relative_path: str, count: int) -> int:
    """The shard (1..count) that holds the picture at `relative_path`."""
    digest = hashlib.sha256(relative_path.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class Shard:
    """Shard `number` of `count` (1 <= number <= count)."""

    number: int
    count: int

    def holds(self, relative_path: str) -> bool:
        return shard_of(relative_path, self.count) == self.number

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`K/N` as given to --shard; anything else is refused with one sentence."""
    match = _SHARD.match(text)
    if match is None:
        raise ConfigError(
            f"--shard takes K/N, this worker's number and the number of workers "
            f"(1/3, 2/3, 3/3), not {text!r}."
        )
    number, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= number <= count:
        raise ConfigError(
            f"--shard {number}/{count} names no shard: K/N needs 1 <= K <= N "
            f"(for {max(count, 1)} workers, 1/{max(count, 1)} to {max(count, 1)}/{max(count, 1)})."
        )
    return Shard(number, count)


class ShardProgress(Protocol):
    """Where a sharded run says how far it got, for `findimage status` and a rebuild's swap."""

    def started(self) -> None: ...

    def wrote(self, count: int) -> None: ...

    def finished(self) -> None: ...
