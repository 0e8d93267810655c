"""One indexing run writing an Elasticsearch index at a time: a lease document.

Each run creates the document `writer-all` in the index `<alias>-writers` with
op_type=create, so of two runs starting at once exactly one is answered 201 and the other
409 ("If the document already exists, the request fails":
https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-index, op_type). The
holder renews it every third of the lease and deletes it at the end, each time only if the
document is still the one it wrote (if_seq_no and if_primary_term:
https://www.elastic.co/docs/reference/elasticsearch/rest-apis/optimistic-concurrency-control).
A run that finds a lease past its expiry (its holder was killed, or lost the cluster), or
held by a process of this host that no longer runs, takes it over with the same
conditional write, which only one of several contenders wins.

Runs that write one shard of a library each (several workers on purpose) hold one lease
per shard (`writer-1-of-3`): pass `shard`. Expiry compares the holder's clock with the
contender's; hosts whose clocks differ by more than a lease could take over a live one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from elasticsearch import BadRequestError, ConflictError
from elasticsearch import NotFoundError as EsNotFoundError

from findimage.errors import BackendUnavailableError
from findimage.stores.elasticsearch.connection import Connection, error_type, translate_errors
from findimage.stores.elasticsearch.mapping import (
    META_KEY,
    has_findimage_mark,
    not_created_by_findimage,
)

log = logging.getLogger(__name__)

# How long a lease lasts without being renewed: what a killed run keeps others waiting.
LEASE_SECONDS = 60.0
WRITERS_SUFFIX = "writers"
# The lease documents' fields; nothing searches them.
_MAPPINGS = {
    "dynamic": False,
    # findimage's mark (as on its other indices), so that an index of that name made by
    # something else is refused rather than written into.
    "_meta": {META_KEY: {"kind": "writer leases"}},
    "properties": {"holder": {"type": "keyword"}, "expires_at": {"type": "long"}},
}


# The leases this process holds now: a lease in this process's name that is not among them
# was left by an earlier run of the process that could not delete it (an outage).
_held: set[tuple[str, str]] = set()
_held_lock = threading.RLock()


def leases_index(alias: str) -> str:
    return f"{alias}-{WRITERS_SUFFIX}"


def lease_id(shard: tuple[int, int] | None = None) -> str:
    """`writer-all` for a run over the whole library, `writer-K-of-N` for its shard K of N."""
    if shard is None:
        return "writer-all"
    number, count = shard
    return f"writer-{number}-of-{count}"


class WriterLease:
    """The lease on `alias` (or one shard of it) for one run; `held()` for the run's time."""

    def __init__(
        self,
        connection: Connection,
        alias: str,
        shard: tuple[int, int] | None = None,
        lease_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._connection = connection
        self._alias = alias
        self._index = leases_index(alias)
        self._id = lease_id(shard)
        self._seconds = LEASE_SECONDS if lease_seconds is None else lease_seconds
        self._clock = clock
        self._holder = f"{os.getpid()} {socket.gethostname()}"
        # The sequence number and primary term of the lease as this run last wrote it.
        self._written: tuple[int, int] | None = None
        self._key = (self._alias, self._id)
        self._stop = threading.Event()
        # Set when another run took the lease over (this one stalled past its expiry).
        self.lost = threading.Event()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        renewing = threading.Thread(target=self._renew_until_stopped, name="findimage-lease")
        renewing.daemon = True
        renewing.start()
        try:
            yield
        finally:
            self._stop.set()
            renewing.join()
            self.release()

    def acquire(self) -> None:
        """Take the lease, or refuse with one sentence naming the run that holds it."""
        # Under the process's lock: two threads of one process taking the same lease would
        # otherwise each take the other's for an earlier run's stale one.
        with _held_lock:
            self._take()
            _held.add(self._key)

    def _take(self) -> None:
        with translate_errors(self._connection, f"lock the index {self._alias} for writing"):
            self._make_index()
            try:
                self._written = self._put(op_type="create")
                return
            except ConflictError:
                pass
            try:
                found = self._client.get(index=self._index, id=self._id).body
            except EsNotFoundError:  # released between the two calls: try once more
                self._written = self._put(op_type="create")
                return
            lease = found.get("_source", {})
            holder = str(lease.get("holder", ""))
            expires_at = float(lease.get("expires_at", 0)) / 1000
            if expires_at > self._clock() and not self._stale(holder):
                raise self._refusal(holder, expires_at)
            log.info(
                "taking over the lease on %s of %s (expiry %s, or its process is gone)",
                self._alias,
                lease.get("holder"),
                _shown(expires_at),
            )
            try:
                self._written = self._put(
                    if_seq_no=found["_seq_no"], if_primary_term=found["_primary_term"]
                )
            except ConflictError:  # another run took it over first
                raise self._refusal("another process", self._clock() + self._seconds) from None

    def release(self) -> None:
        """Delete the lease if it is still this run's; a failure leaves it to expire (or to
        the next run of this host, which sees this process gone)."""
        with _held_lock:
            _held.discard(self._key)
        if self._written is None or self.lost.is_set():
            return
        seq_no, term = self._written
        try:
            self._client.delete(
                index=self._index, id=self._id, if_seq_no=seq_no, if_primary_term=term
            )
        except Exception as exc:
            log.info(
                "could not release the lease on %s (%r): it expires by itself", self._alias, exc
            )
        self._written = None

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self._seconds / 3):
            if self._written is None:
                return
            seq_no, term = self._written
            try:
                self._written = self._put(if_seq_no=seq_no, if_primary_term=term)
            except ConflictError:
                self.lost.set()
                log.error(
                    "another run took over the lease on %s: this run stalled past it", self._alias
                )
                return
            except Exception as exc:  # the cluster away for a moment: the next turn tries again
                log.warning("could not renew the lease on %s (%r)", self._alias, exc)

    def _put(self, **conditions: Any) -> tuple[int, int]:
        expires_at = self._clock() + self._seconds
        answer = self._client.index(
            index=self._index,
            id=self._id,
            document={"holder": self._holder, "expires_at": int(expires_at * 1000)},
            **conditions,
        ).body
        return int(answer["_seq_no"]), int(answer["_primary_term"])

    def _make_index(self) -> None:
        """The leases' own index, made once; never one behind the alias. One of that name
        that findimage did not make is refused (a lease written there would change another
        tool's data)."""
        try:
            found = self._client.indices.get_mapping(index=self._index).body
        except EsNotFoundError:
            found = None
        if found is not None:
            for body in found.values():
                if not has_findimage_mark(body.get("mappings", {})):
                    raise not_created_by_findimage(self._index)
            return
        try:
            self._client.indices.create(
                index=self._index,
                mappings=_MAPPINGS,
                settings={"index": {"number_of_shards": 1, "hidden": True}},
            )
        except BadRequestError as exc:
            if error_type(exc) != "resource_already_exists_exception":
                raise

    def _stale(self, holder: str) -> bool:
        """A lease that need not be waited out: its holder on this host is gone, or it is
        this process, holding no such lease now (an earlier run here failed to delete it)."""
        if holder == self._holder:
            with _held_lock:
                return self._key not in _held
        return _gone(holder)

    def _refusal(self, holder: str, expires_at: float) -> BackendUnavailableError:
        parts = holder.split()
        who = f"pid {parts[0]} on {parts[1]}" if len(parts) == 2 else holder or "another process"
        return BackendUnavailableError(
            f"Another findimage run ({who}) is writing the Elasticsearch index {self._alias}: "
            f"wait for it to finish, then run again (its lease, renewed while it runs, "
            f"expires at {_shown(expires_at)} if it stopped)."
        )

    @property
    def _client(self) -> Any:
        return self._connection.client


def _gone(holder: str) -> bool:
    """Whether the lease's holder was a process of this host that no longer runs (killed, or
    it could not delete its lease during an outage): its lease need not be waited out. A
    holder on another host, or a pid that runs (perhaps reused), is waited out."""
    parts = holder.split()
    if len(parts) != 2 or parts[1] != socket.gethostname() or not parts[0].isdigit():
        return False
    try:
        os.kill(int(parts[0]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, under another user
        return False
    return False


def _shown(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M:%S UTC")
