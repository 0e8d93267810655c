"""One indexing run writes an Elasticsearch index at a time (issue 20, item 14): a lease
document created with op_type=create, renewed with if_seq_no/if_primary_term, taken over
once expired; one lease per shard for runs that each write one shard on purpose. Against
the emulator, through the real client."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from findimage.errors import BackendUnavailableError
from findimage.settings import Settings
from findimage.stores.elasticsearch.connection import connect
from findimage.stores.elasticsearch.writer_lease import WriterLease, lease_id, leases_index
from tests.support.cli import json_in_process, run_in_process
from tests.support.pictures import make_library
from tests.support.waiting import CEILING_SECONDS, wait_until

ALIAS = "findimage-images"
LEASES = leases_index(ALIAS)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    make_library(root, 4)
    return root


def _made_by_findimage(es: Elasticsearch) -> None:
    """The leases' index as a run makes it (findimage's `_meta` mark), before a test puts a
    lease there by hand."""
    es.indices.create(index=LEASES, mappings={"_meta": {"findimage": {"kind": "writer leases"}}})


def test_a_run_while_another_holds_the_lease_is_refused_and_writes_nothing(
    es_settings: Settings,
    es: Elasticsearch,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert json_in_process(capsys, "index", str(library))["indexed"] == 4
    (library / "trips" / "red-circle-0000.png").unlink(missing_ok=True)
    make_library(library / "more", 2)
    other = WriterLease(connect(es_settings), ALIAS)
    with other.held():
        code, out, err = run_in_process(capsys, "index", str(library))
        assert code == 1 and out == ""
        assert err == (
            f"findimage: Another findimage run (pid {os.getpid()} on {socket.gethostname()}) "
            f"is writing the Elasticsearch index {ALIAS}: wait for it to finish, then run "
            f"again (its lease, renewed while it runs, expires at {err.split('expires at ')[1]}"
        )
        es.indices.refresh(index=ALIAS)
        assert es.count(index=ALIAS)["count"] == 4  # nothing written
    # Released at the end: the next run writes.
    assert not es.exists(index=LEASES, id="writer-all")
    assert json_in_process(capsys, "index", str(library))["indexed"] == 2


def test_an_expired_lease_is_taken_over_and_released_at_the_end(
    es_env: dict[str, str], es: Elasticsearch, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a killed run leaves: its lease, no longer renewed, past its expiry."""
    _made_by_findimage(es)
    expired = int((time.time() - 1) * 1000)
    es.index(index=LEASES, id="writer-all", document={"holder": "999 gone", "expires_at": expired})
    assert json_in_process(capsys, "index", str(library))["indexed"] == 4
    assert not es.exists(index=LEASES, id="writer-all")


def test_two_takeovers_of_one_expired_lease_only_one_wins(
    es_settings: Settings, es: Elasticsearch
) -> None:
    _made_by_findimage(es)
    expired = int((time.time() - 1) * 1000)
    es.index(index=LEASES, id="writer-all", document={"holder": "999 gone", "expires_at": expired})
    first = WriterLease(connect(es_settings), ALIAS)
    second = WriterLease(connect(es_settings), ALIAS)
    # Both read the expired lease; the first conditional write wins, the second gets 409.
    found = es.get(index=LEASES, id="writer-all")
    first.acquire()
    with pytest.raises(BackendUnavailableError, match="Another findimage run"):
        second.acquire()
    current = es.get(index=LEASES, id="writer-all")
    assert current["_seq_no"] > found["_seq_no"]
    first.release()
    assert not es.exists(index=LEASES, id="writer-all")


def test_each_shard_has_its_own_lease(es_settings: Settings, es: Elasticsearch) -> None:
    assert lease_id() == "writer-all" and lease_id((1, 3)) == "writer-1-of-3"
    one = WriterLease(connect(es_settings), ALIAS, shard=(1, 3))
    two = WriterLease(connect(es_settings), ALIAS, shard=(2, 3))
    with one.held(), two.held():
        assert es.exists(index=LEASES, id="writer-1-of-3")
        assert es.exists(index=LEASES, id="writer-2-of-3")
        with pytest.raises(BackendUnavailableError, match="Another findimage run"):
            WriterLease(connect(es_settings), ALIAS, shard=(1, 3)).acquire()
    assert not es.exists(index=LEASES, id="writer-1-of-3")


def test_a_lease_is_renewed_and_a_holder_whose_lease_was_taken_stops_writing(
    es_settings: Settings, es: Elasticsearch
) -> None:
    lease = WriterLease(connect(es_settings), ALIAS, lease_seconds=0.6)
    with lease.held():
        first = es.get(index=LEASES, id="writer-all")
        wait_until(
            lambda: es.get(index=LEASES, id="writer-all")["_seq_no"] > first["_seq_no"],
            CEILING_SECONDS,
            "a renewal",
        )
        # Another run took it over (this one looked stalled).
        es.index(index=LEASES, id="writer-all", document={"holder": "1 other", "expires_at": 0})
        wait_until(lease.lost.is_set, CEILING_SECONDS, "the holder to see its lease lost")
    # Not deleted: it is the other run's now.
    assert es.get(index=LEASES, id="writer-all")["_source"]["holder"] == "1 other"


def test_a_lease_of_a_process_of_this_host_that_is_gone_is_taken_over_at_once(
    es_env: dict[str, str], es: Elasticsearch, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed with SIGKILL (or one that could not delete its lease during an outage)
    on this host: the next run need not wait for the lease to expire."""
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    _made_by_findimage(es)
    later = int((time.time() + 3600) * 1000)
    holder = f"{gone} {socket.gethostname()}"
    es.index(index=LEASES, id="writer-all", document={"holder": holder, "expires_at": later})
    assert json_in_process(capsys, "index", str(library))["indexed"] == 4
    # The same on another host is waited out.
    es.index(
        index=LEASES, id="writer-all", document={"holder": f"{gone} elsewhere", "expires_at": later}
    )
    code, _, err = run_in_process(capsys, "index", str(library))
    assert code == 1 and f"(pid {gone} on elsewhere)" in err


def test_a_run_whose_lease_was_taken_over_writes_no_more(
    es_settings: Settings,
    es: Elasticsearch,
    library: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run that stalled past its lease (a long GC pause, a suspended laptop) while another
    run took the lease over: its next bulk write is refused instead of mixing with the other's."""
    from findimage.stores.elasticsearch import writer_lease
    from findimage.stores.elasticsearch.store import ElasticsearchStore

    assert json_in_process(capsys, "index", str(library))["indexed"] == 4
    monkeypatch.setattr(writer_lease, "LEASE_SECONDS", 0.6)
    store = ElasticsearchStore.from_settings(es_settings)
    with store.writing():
        assert store.delete(["no-such-picture"]) == []
        es.index(index=LEASES, id="writer-all", document={"holder": "1 other", "expires_at": 0})

        def refused() -> bool:
            try:
                store.delete(["no-such-picture"])
            except BackendUnavailableError as exc:
                assert "Another findimage run took over writing" in str(exc)
                return True
            return False

        wait_until(refused, CEILING_SECONDS, "the stalled run to stop writing")
    store.close()
    es.indices.refresh(index=ALIAS)
    assert es.count(index=ALIAS)["count"] == 4


def test_a_writers_index_findimage_did_not_make_is_refused_and_left_as_it_was(
    es_env: dict[str, str], es: Elasticsearch, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    es.indices.create(index=LEASES, mappings={"properties": {"title": {"type": "keyword"}}})
    es.index(index=LEASES, id="writer-all", document={"title": "theirs"}, refresh=True)
    code, out, err = run_in_process(capsys, "index", str(library))
    assert (code, out) == (2, "")
    assert err.startswith(
        f"findimage: The Elasticsearch index {LEASES} was not created by findimage"
    )
    assert es.get(index=LEASES, id="writer-all")["_source"] == {"title": "theirs"}
    assert not es.indices.exists_alias(name=ALIAS)
