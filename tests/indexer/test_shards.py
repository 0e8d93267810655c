"""The partition of `findimage index --shard K/N`: stable, documented, every path in one shard."""

from __future__ import annotations

import pytest

from findimage.errors import ConfigError
from indexer.shards import Shard, parse_shard, shard_of

PATHS = [
    f"{folder}picture-{n:04d}.jpg" for folder in ("", "trips/", "trips/2024/") for n in range(400)
]


def test_the_shard_is_the_documented_hash_of_the_path() -> None:
    # docs/elasticsearch.md: sha256 of the UTF-8 library-relative path, its first 8 bytes
    # as a big-endian integer, mod N, plus 1. sha256(b"a.jpg") starts 509b0d4641a7c3ba.
    first_eight = int.from_bytes(bytes.fromhex("509b0d4641a7c3ba"), "big")
    assert first_eight == 5808250739824772026
    for count in (1, 2, 3, 4, 10):
        assert shard_of("a.jpg", count) == first_eight % count + 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.jpg", [1, 1, 2, 3, 7]),
        ("trips/2024/beach.png", [1, 1, 2, 1, 7]),
        ("marketing/logo.png", [1, 2, 2, 2, 2]),
        ("été/photo.jpg", [1, 1, 1, 1, 1]),
    ],
)
def test_known_paths_fall_in_known_shards(path: str, expected: list[int]) -> None:
    """Fixed values: a change of the rule would split a running rebuild's work wrongly."""
    assert [shard_of(path, count) for count in (1, 2, 3, 4, 10)] == expected


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_every_path_is_in_exactly_one_shard(count: int) -> None:
    shards = [Shard(number, count) for number in range(1, count + 1)]
    for path in PATHS:
        assert sum(shard.holds(path) for shard in shards) == 1, path
    # And the work is split about evenly (1,200 paths: each shard within a third of its share).
    share = len(PATHS) / count
    for shard in shards:
        assert abs(sum(shard.holds(path) for path in PATHS) - share) < share / 3


@pytest.mark.parametrize(
    ("text", "shard"),
    [("1/3", Shard(1, 3)), ("3/3", Shard(3, 3)), ("1/1", Shard(1, 1)), (" 2 / 5 ", Shard(2, 5))],
)
def test_k_from_1_to_n_is_a_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "0/0", "x", "1", "1/3/5", "-1/3", "a/b", ""])
def test_anything_else_is_refused_with_one_sentence(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_shard(text)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("--shard") and message.endswith(".")
