"""The indices findimage makes under its alias: their names, the settings a new one is built
with, and the leftovers of unfinished rebuilds. Only what is named here and carries
findimage's `_meta` mark is ever deleted."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from elasticsearch import NotFoundError as EsNotFoundError

from findimage.stores.elasticsearch.connection import Connection, translate_errors
from findimage.stores.elasticsearch.mapping import has_findimage_mark

# While the new index fills: nothing searches it, so no refreshes, and no replicas to copy
# every write to. Put back to the live index's values (or the defaults) before the swap.
BUILD_SETTINGS = {"index": {"refresh_interval": "-1", "number_of_replicas": "0"}}
# The first index under an alias, made by the first `findimage index`; a rebuild's are
# named by their time (new_index_name).
FIRST_INDEX_SUFFIX = "first"


def new_index_name(alias: str) -> str:
    """A fresh concrete index name under the alias, sortable by creation time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{alias}-{stamp}-{secrets.token_hex(3)}"


def made_by_findimage(alias: str, name: str) -> bool:
    """Whether `name` is one findimage gives an index under `alias`."""
    pattern = rf"{re.escape(alias)}-(\d{{14}}-[0-9a-f]{{6}}|{FIRST_INDEX_SUFFIX})"
    return re.fullmatch(pattern, name) is not None


def leftover_indices(connection: Connection, alias: str) -> list[str]:
    """Indices named as findimage names them under the alias and carrying its `_meta` mark,
    that the alias does not lead to: what unfinished rebuilds left (or one running now)."""
    with translate_errors(connection, "list the indices"):
        try:
            found = connection.client.indices.get(index=f"{alias}-*").body
        except EsNotFoundError:
            return []
    return sorted(
        name
        for name, info in found.items()
        if made_by_findimage(alias, name)
        and has_findimage_mark(info.get("mappings", {}))
        and alias not in info.get("aliases", {})
    )
