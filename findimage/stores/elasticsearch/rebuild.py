"""`findimage index --rebuild` on Elasticsearch: a new index filled beside the live one, then
the alias moved to it in one atomic `_aliases` call.

It gets out of every state the messages send people to it for: a concrete index named like
the alias is removed in the same `_aliases` call (`remove_index`); a failed swap deletes the
new index; what earlier unfinished rebuilds left behind is listed by `findimage status` and
removed by the next successful rebuild. With unchanged models nothing is embedded again: the
documents and their vectors are copied with `_reindex` and the indexer only brings the copy
in line with the library. A live index whose mapping lacks a field the current one has
(dates, places) is not copied: its documents never had those fields filled, so every
picture is read again, or a filter would silently match nothing.

It never touches what findimage did not make: before anything is created, every index
behind the alias must carry findimage's `_meta` mark and be named as findimage names its
indices (the alias itself, or the alias and a suffix); anything else is refused with a
sentence naming it. Leftovers are deleted only when they carry the mark too.

The new index is built as Elastic's indexing-speed guide advises: no refreshes and no
replicas while it fills, both put back before it goes live
(https://www.elastic.co/docs/deploy-manage/production-guidance/optimize-performance/indexing-speed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError
from elasticsearch import NotFoundError as EsNotFoundError

from findimage.documents import ModelInfo
from findimage.errors import (
    BackendUnavailableError,
    ConfigError,
    FindImageError,
    ShardsNotDoneError,
)
from findimage.stores.elasticsearch.connection import translate_errors
from findimage.stores.elasticsearch.indices import (
    BUILD_SETTINGS,
    leftover_indices,
    made_by_findimage,
    new_index_name,
)
from findimage.stores.elasticsearch.mapping import (
    FILTER_FIELDS,
    REQUIRED_FIELDS,
    has_findimage_mark,
    not_created_by_findimage,
)
from findimage.stores.elasticsearch.progress import latest_run, shard_reports
from findimage.stores.elasticsearch.store import ElasticsearchStore

log = logging.getLogger(__name__)

RESTORED_SETTINGS = ("refresh_interval", "number_of_replicas")
# A server-side copy of 100k documents takes minutes; the client waits for it.
REINDEX_TIMEOUT_SECONDS = 3600.0


def check_ours(alias: str, found: dict[str, Any]) -> None:
    """Refuse, naming it, any index behind `alias` that findimage did not make: one without
    findimage's `_meta` mark, or one named outside the alias's own names (another
    deployment's index added to the alias). `found` is a GET of the alias."""
    for name, info in sorted(found.items()):
        if not has_findimage_mark(info.get("mappings", {})):
            raise not_created_by_findimage(name)
        if name != alias and not made_by_findimage(alias, name):
            raise ConfigError(
                f"The Elasticsearch index {name} behind the alias {alias} was not named by "
                f"findimage for {alias}, so `--rebuild` leaves it alone: remove it from the "
                "alias, or set FINDIMAGE_ES_INDEX to an alias of findimage's own."
            )


def lacks_filter_fields(found: dict[str, Any]) -> bool:
    """Whether an index behind the alias maps a date or place field otherwise than the
    current mapping does (made before those fields existed): its documents lack them."""
    for info in found.values():
        properties = info.get("mappings", {}).get("properties", {})
        for field, kind in FILTER_FIELDS.items():
            if properties.get(field, {}).get("type") != kind:
                return True
    return False


class Rebuild:
    def __init__(self, live: ElasticsearchStore, image_model: str, text_model: str):
        self._live = live
        self._alias = live.alias
        self._wanted = (image_model, text_model)
        self._connection = live.connection

    @contextmanager
    def run(self) -> Iterator[ElasticsearchStore]:
        found = self._behind_alias()
        check_ours(self._alias, found)
        behind = sorted(found)
        recorded = self._recorded_models()
        fresh = self._live.with_target(new_index_name(self._alias))
        try:
            same_models = (
                recorded is not None and (recorded.image_model, recorded.text_model) == self._wanted
            )
            if recorded is not None and same_models and lacks_filter_fields(found):
                log.info(
                    "%s lacks the date or place fields of the current mapping: every picture "
                    "is read again instead of copied",
                    self._alias,
                )
            elif recorded is not None and same_models:
                self._copy(recorded, fresh, behind)
            yield fresh
            if fresh.models() is None:
                return
            self._make_live(fresh, behind)
        except BaseException:
            self._discard(fresh.target)
            raise
        self._delete_old(behind, fresh.target)

    # --- a rebuild spread over workers: prepare, `--shard K/N --into NAME`, swap ---------------

    def prepare(self, models: ModelInfo) -> str:
        """Create the new index for workers to fill (a copy of the live one when its models
        are the ones configured, as `run` makes) and return its name."""
        found = self._behind_alias()
        check_ours(self._alias, found)
        recorded = self._recorded_models()
        fresh = self._live.with_target(new_index_name(self._alias))
        try:
            same_models = (
                recorded is not None and (recorded.image_model, recorded.text_model) == self._wanted
            )
            if recorded is not None and same_models and not lacks_filter_fields(found):
                self._copy(recorded, fresh, sorted(found))
            else:
                fresh.record_models(models)
        except BaseException:
            self._discard(fresh.target)
            raise
        log.info("prepared %s for a rebuild of %s", fresh.target, self._alias)
        return fresh.target

    def prepared(self, name: str) -> ElasticsearchStore:
        """A store on the prepared index `name`, for a worker's `--into NAME`: one findimage
        made under this alias, that exists and is not live yet."""
        fresh = self._prepared_store(name)
        if name in self._behind_alias():
            raise ConfigError(
                f"The index {name} is already live behind {self._alias}: run the workers "
                "without --into, or prepare a new rebuild with `findimage index --rebuild "
                "--prepare`."
            )
        return fresh

    def swap(self, name: str) -> bool:
        """Put the prepared index `name` live behind the alias, once every shard of one
        number of workers has reported done into it with its models; False when it is live
        already (a swap run twice)."""
        found = self._behind_alias()
        check_ours(self._alias, found)
        if name in found:
            return False
        fresh = self._prepared_store(name)
        models = fresh.models()
        assert models is not None
        self._check_shards_done(name, (models.image_model, models.text_model))
        behind = sorted(found)
        self._make_live(fresh, behind)
        self._delete_old(behind, name)
        self._live.reload()
        return True

    def _prepared_store(self, name: str) -> ElasticsearchStore:
        if not made_by_findimage(self._alias, name):
            raise ConfigError(
                f"{name} is not a name findimage gives a new index under {self._alias}: give "
                "the name `findimage index --rebuild --prepare` printed."
            )
        fresh = self._live.with_target(name)
        if fresh.models() is None:
            raise ConfigError(
                f"There is no prepared index {name}: run `findimage index --rebuild --prepare` "
                "and give the name it prints."
            )
        return fresh

    def _check_shards_done(self, name: str, models: tuple[str, str]) -> None:
        reports = shard_reports(self._connection, self._alias, [name])
        by_count: dict[int, dict[int, Any]] = {}
        for report in reports:
            if report.done and (report.image_model, report.text_model) == models:
                by_count.setdefault(report.shards, {})[report.shard] = report
        if any(len(done) == count for count, done in by_count.items()):
            return
        run = latest_run(reports)
        if not run:
            raise ShardsNotDoneError(
                f"No worker has reported into {name} yet: run `findimage index --shard K/N "
                f"--into {name}` for K = 1..N, then swap."
            )
        count = run[0].shards
        done = by_count.get(count, {})
        missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in done]
        raise ShardsNotDoneError(
            f"The rebuild into {name} is not done: shard{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} {'have' if len(missing) > 1 else 'has'} not reported done; "
            f"run `findimage index --shard K/{count} --into {name}` for "
            f"{'them' if len(missing) > 1 else 'it'}, then swap again."
        )

    def _behind_alias(self) -> dict[str, Any]:
        """The indices the alias leads to (or the index named like it), with their mappings."""
        with translate_errors(self._connection, "read the aliases"):
            try:
                return dict(self._connection.client.indices.get(index=self._alias).body)
            except EsNotFoundError:
                return {}

    def _recorded_models(self) -> ModelInfo | None:
        """The live index's models, or None when it has none worth copying from."""
        try:
            return self._live.models()
        except FindImageError as error:
            log.info("the live index will not be copied: %s", error)
            return None

    def _copy(self, models: ModelInfo, fresh: ElasticsearchStore, behind: list[str]) -> None:
        """Copy every complete document, vector included, without embedding anything."""
        client = self._connection.client
        with translate_errors(self._connection, f"create the index {fresh.target}"):
            fresh.create_index(fresh.target, models, {}, settings=BUILD_SETTINGS)
        complete = {"bool": {"filter": [{"exists": {"field": name}} for name in REQUIRED_FIELDS]}}
        with translate_errors(self._connection, f"copy {self._alias} into {fresh.target}"):
            response = client.options(request_timeout=REINDEX_TIMEOUT_SECONDS).reindex(
                source={"index": ",".join(behind), "query": complete},
                dest={"index": fresh.target},
                refresh=True,
                wait_for_completion=True,
            )
        failures = response.get("failures") or []
        if failures:
            cause = failures[0].get("cause", failures[0].get("error", {}))
            raise BackendUnavailableError(
                f"Elasticsearch could not copy {self._alias} into the new index "
                f"{fresh.target}: {cause.get('reason', cause.get('type', 'unknown reason'))}."
            )
        log.info("copied %s documents into %s", response.get("created"), fresh.target)

    def _make_live(self, fresh: ElasticsearchStore, behind: list[str]) -> None:
        client = self._connection.client
        restored = self._live_settings(behind)
        with translate_errors(self._connection, f"finish the index {fresh.target}"):
            client.indices.put_settings(index=fresh.target, settings={"index": restored})
            client.indices.refresh(index=fresh.target)
        actions: list[dict[str, Any]] = [
            {"remove": {"index": name, "alias": self._alias}}
            for name in behind
            if name != self._alias
        ]
        if self._alias in behind:
            # A concrete index named like the alias goes in the same atomic call that gives
            # the alias to the new index (30_remove_index_and_replace_with_alias.yml).
            actions.append({"remove_index": {"index": self._alias}})
        actions.append({"add": {"index": fresh.target, "alias": self._alias}})
        with translate_errors(self._connection, f"move the alias {self._alias} to {fresh.target}"):
            response = client.indices.update_aliases(actions=actions)
        if response.get("errors"):
            log.info("some alias actions found nothing to do: %s", response.get("action_results"))
        log.info("alias %s now points at %s", self._alias, fresh.target)

    def _live_settings(self, behind: list[str]) -> dict[str, Any]:
        """The live index's refresh and replica settings; null (the default) without one."""
        restored: dict[str, Any] = dict.fromkeys(RESTORED_SETTINGS)
        if not behind:
            return restored
        with translate_errors(self._connection, f"read the settings of {behind[0]}"):
            found = self._connection.client.indices.get_settings(index=behind[0]).body
        index_settings: dict[str, Any] = next(iter(found.values()), {})
        current = index_settings.get("settings", {}).get("index", {})
        for name in RESTORED_SETTINGS:
            restored[name] = current.get(name)
        return restored

    def _delete_old(self, behind: list[str], fresh: str) -> None:
        """The old index, and leftovers of unfinished rebuilds. A search still running on the
        old index when it goes is retried by the store on the index the alias leads to now."""
        try:
            leftovers = leftover_indices(self._connection, self._alias)
        except FindImageError as error:
            log.info("could not list leftover indices: %s", error)
            leftovers = []
        for name in sorted({*behind, *leftovers} - {fresh, self._alias}):
            self._discard(name)

    def _discard(self, name: str) -> None:
        """Best effort: what cannot be deleted now is listed by `findimage status` and
        deleted by the next successful rebuild."""
        try:
            self._connection.client.indices.delete(index=name)
            log.info("deleted the index %s", name)
        except EsNotFoundError:
            return
        except (ApiError, TransportError, FindImageError) as exc:
            log.info("could not delete the index %s (%r); the next rebuild will", name, exc)


@contextmanager
def rebuilding(
    live: ElasticsearchStore, image_model: str, text_model: str
) -> Iterator[ElasticsearchStore]:
    """A store on a new concrete index, for the indexer to fill; swapped in behind the alias
    when the block ends, and the live store then reads the new index's models."""
    with Rebuild(live, image_model, text_model).run() as fresh:
        yield fresh
    live.reload()
