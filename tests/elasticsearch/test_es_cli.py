"""`findimage` end to end on FINDIMAGE_BACKEND=elasticsearch (the emulator): the same answers as
the embedded store, rebuilds under search load, and an outage in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from findimage.documents import document_id
from findimage.stores.elasticsearch.writer_lease import leases_index
from tests.support.cli import json_in_process, run_in_process
from tests.support.es_emulator import ElasticsearchEmulator
from tests.support.pictures import make_library
from tests.support.waiting import CEILING_SECONDS

LIBRARY_SIZE = 12
DEADLINE_SECONDS = CEILING_SECONDS


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    make_library(root, LIBRARY_SIZE)
    return root


def _answers(capsys: pytest.CaptureFixture[str], library: Path) -> dict[str, list]:
    picture = str(sorted(library.rglob("*.png"))[0])
    like = json_in_process(capsys, "search", "red circle", "-k", "1")["results"][0]["id"]
    searches = {
        "text": ("search", "red circle", "-k", "5"),
        "image": ("search", "--image", picture, "-k", "4"),
        "like": ("search", "--like", like, "-k", "3"),
        "folder": ("search", "blue square", "--in", "trips", "-k", "5"),
    }
    return {
        name: [(hit["path"], hit["score"]) for hit in json_in_process(capsys, *args)["results"]]
        for name, args in searches.items()
    }


def test_elasticsearch_answers_as_the_embedded_store_does(
    es_env: dict[str, str],
    library: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert json_in_process(capsys, "index", str(library))["indexed"] == LIBRARY_SIZE
    on_elasticsearch = _answers(capsys, library)
    es_status = json_in_process(capsys, "status")
    monkeypatch.setenv("FINDIMAGE_BACKEND", "embedded")
    assert json_in_process(capsys, "index", str(library))["indexed"] == LIBRARY_SIZE
    embedded = _answers(capsys, library)
    embedded_status = json_in_process(capsys, "status")

    for name, hits in embedded.items():
        assert [path for path, _ in on_elasticsearch[name]] == [path for path, _ in hits], name
        for (_, mine), (_, theirs) in zip(on_elasticsearch[name], hits, strict=True):
            assert mine == pytest.approx(theirs, abs=1e-5)
    assert {path for path, _ in embedded["folder"]} <= {
        str(p.relative_to(library)) for p in (library / "trips").rglob("*.*")
    }
    same = ("count", "image_model", "text_model", "dims")
    assert {k: es_status[k] for k in same} == {k: embedded_status[k] for k in same}
    assert es_status["backend"] == "elasticsearch"


def test_an_incremental_run_writes_only_what_changed_and_removes_what_is_gone(
    es_env: dict[str, str], library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_in_process(capsys, "index", str(library))
    sorted(library.rglob("*.jpg"))[0].unlink()
    report = json_in_process(capsys, "index", str(library))
    assert (report["indexed"], report["unchanged"], report["deleted"]) == (
        0,
        LIBRARY_SIZE - 1,
        1,
    )
    assert json_in_process(capsys, "status")["count"] == LIBRARY_SIZE - 1


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _runs(progress: Path) -> int:
    text = progress.read_text() if progress.exists() else ""
    return int(text or 0)


def _searcher(module: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ},
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_rebuild_with_unchanged_models_embeds_nothing_while_another_process_searches(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_in_process(capsys, "index", str(library))
    [old_index] = emulator.index_names()
    progress, stop = tmp_path / "progress", tmp_path / "stop"
    searcher = _searcher(
        "tests.support.search_loop",
        *(str(progress), str(stop), "search", "red circle", "-k", "3", "--json"),
    )
    try:
        _wait_for(lambda: _runs(progress) >= 1, "the first search")
        during = threading.Event()

        def hold_the_copy_into_the_new_index(method: str, path: str) -> bool:
            if path == "/_reindex" and not during.is_set():
                # Searches must go on while the new index is being built.
                seen = _runs(progress)
                _wait_for(lambda: _runs(progress) >= seen + 2, "searches during the rebuild")
                during.set()
            return True

        emulator.before_request = hold_the_copy_into_the_new_index
        report = json_in_process(capsys, "index", "--rebuild", str(library))
        emulator.before_request = None
        assert during.is_set()
        assert (report["indexed"], report["unchanged"]) == (0, LIBRARY_SIZE)
        after = _runs(progress)
        _wait_for(lambda: _runs(progress) >= after + 2, "searches after the swap")
    finally:
        stop.touch()
        out, err = searcher.communicate(timeout=DEADLINE_SECONDS)
    summary = json.loads(out)
    assert summary["failures"] == [], err
    assert summary["runs"] >= 5
    [new_index] = emulator.index_names()
    assert new_index != old_index
    assert emulator.aliases() == {"findimage-images": [new_index]}
    assert json_in_process(capsys, "status")["count"] == LIBRARY_SIZE


def test_a_running_service_refuses_once_another_process_rebuilt_with_other_models(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    other_clip: Path,
) -> None:
    json_in_process(capsys, "index", str(library))
    picture = sorted(library.rglob("*.png"))[0]
    first_answer = json_in_process(capsys, "search", "--image", str(picture), "-k", "3")["results"]
    progress, stop, swapped = tmp_path / "progress", tmp_path / "stop", tmp_path / "swapped"
    service = _searcher(
        "tests.support.service_loop", str(progress), str(stop), str(swapped), str(picture)
    )
    try:
        _wait_for(lambda: _runs(progress) >= 2, "the service's first searches")
        monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", str(other_clip))
        monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", str(other_clip))
        report = json_in_process(capsys, "index", "--rebuild", str(library))
        assert report["indexed"] == LIBRARY_SIZE
        swapped.touch()
        seen = _runs(progress)
        _wait_for(lambda: _runs(progress) >= seen + 3, "searches after the swap")
        monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", es_env["FINDIMAGE_IMAGE_MODEL"])
        monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", es_env["FINDIMAGE_TEXT_MODEL"])
        code, _, fresh_err = run_in_process(capsys, "search", "--image", str(picture), "-k", "3")
    finally:
        stop.touch()
        out, err = service.communicate(timeout=DEADLINE_SECONDS)
    assert code == 2
    fresh_sentence = fresh_err.strip().removeprefix("findimage: ")
    outcomes = json.loads(out)
    expected = [[hit["path"], hit["score"]] for hit in first_answer]
    for outcome in outcomes:
        if "results" in outcome:
            # Never a mix: only the answer of the index built with the service's models.
            assert not outcome["after_marker"], err
            assert [p for p, _ in outcome["results"]] == [p for p, _ in expected]
        else:
            assert outcome["refused"] == fresh_sentence
    after = [o for o in outcomes if o["after_marker"]]
    assert len(after) >= 3
    assert all(o.get("refused") == fresh_sentence for o in after)


def test_an_indexing_run_of_many_batches_refreshes_at_most_twice(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINDIMAGE_BATCH_SIZE", "2")
    assert json_in_process(capsys, "index", str(library))["indexed"] == LIBRARY_SIZE
    bulks = [r for r in emulator.requests if r.path.endswith("_bulk")]
    refreshes = [r for r in emulator.requests if r.path.endswith("/_refresh")]
    assert len(bulks) >= LIBRARY_SIZE // 2
    assert 1 <= len(refreshes) <= 2
    assert json_in_process(capsys, "status")["count"] == LIBRARY_SIZE


def test_reused_vectors_come_in_one_mget_per_batch(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    json_in_process(capsys, "index", str(library))
    moved = library / "moved"
    moved.mkdir()
    for number, path in enumerate(sorted(p for p in library.rglob("*.*") if p.is_file())):
        path.rename(moved / f"{number}{path.suffix}")
    monkeypatch.setenv("FINDIMAGE_BATCH_SIZE", "4")
    emulator.requests.clear()
    report = json_in_process(capsys, "index", str(library))
    assert (report["indexed"], report["deleted"]) == (LIBRARY_SIZE, LIBRARY_SIZE)
    assert len(emulator.calls("POST", "/_mget")) == LIBRARY_SIZE // 4
    # No picture read one by one (the run's writer lease is its own document, not a picture).
    leases = f"/{leases_index('findimage-images')}/"
    assert [r for r in emulator.requests if "/_doc/" in r.path and leases not in r.path] == []


def test_an_outage_mid_run_is_one_sentence_and_a_rerun_completes(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bulk_requests = []

    def crash_at_the_second_bulk(method: str, path: str) -> bool:
        if path.endswith("/_bulk"):
            bulk_requests.append(path)
            if len(bulk_requests) == 2:
                emulator.stop()
                return False
        return True

    emulator.before_request = crash_at_the_second_bulk
    code, out, err = run_in_process(capsys, "index", str(library))
    assert code == 1
    # The last line is the whole message (model loading may print progress above it).
    assert err.strip().splitlines()[-1] == (
        f"findimage: Cannot reach Elasticsearch at {emulator.url}: check that it is running "
        "and that FINDIMAGE_ES_URL is right."
    )
    assert "Traceback" not in out + err

    emulator.before_request = None
    emulator.start()
    report = json_in_process(capsys, "index", str(library))
    written_before = int(es_env["FINDIMAGE_BATCH_SIZE"])
    assert report["indexed"] == LIBRARY_SIZE - written_before
    assert report["unchanged"] == written_before
    assert json_in_process(capsys, "status")["count"] == LIBRARY_SIZE


def test_documents_elasticsearch_refuses_are_reported_by_path_and_not_counted(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = sorted(library.rglob("*.png"))[:2]
    paths = {str(p.relative_to(library)) for p in refused}
    emulator.refuse_documents({document_id(path) for path in paths})
    report = json_in_process(capsys, "index", str(library))
    assert report["indexed"] == LIBRARY_SIZE - 2
    assert {skipped["path"] for skipped in report["skipped"]} == paths
    for skipped in report["skipped"]:
        assert "document_parsing_exception" in skipped["reason"]
    assert json_in_process(capsys, "status")["count"] == LIBRARY_SIZE - 2

    emulator.refuse_documents(set())
    assert json_in_process(capsys, "index", str(library))["indexed"] == 2


def test_rebuild_on_the_embedded_store_says_what_to_do_instead(
    findimage_env: dict[str, str], library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "index", "--rebuild", str(library))
    assert code == 2
    assert "--rebuild is for FINDIMAGE_BACKEND=elasticsearch" in err
    assert out == ""


def test_status_reports_the_text_model_problem(
    es_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINDIMAGE_ES_TEXT_MODEL_ID", "absent-model")
    status = json_in_process(capsys, "status")
    assert status["count"] == 0
    assert "absent-model is not in Elasticsearch" in status["text_model_problem"]


def test_a_rebuild_stopped_by_an_outage_is_one_line_and_leaves_the_live_index(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_in_process(capsys, "index", str(library))
    live = emulator.index_names()

    def crash_at_the_copy(method: str, path: str) -> bool:
        if path == "/_reindex":
            emulator.stop()
            return False
        return True

    emulator.before_request = crash_at_the_copy
    code, _, err = run_in_process(capsys, "index", "--rebuild", str(library))
    assert code == 1
    assert err.strip().splitlines() == [
        f"findimage: Cannot reach Elasticsearch at {emulator.url}: check that it is running "
        "and that FINDIMAGE_ES_URL is right."
    ]
    emulator.before_request = None
    emulator.start()
    # The half-made index could not be deleted during the outage: status names it, and the
    # next rebuild removes it.
    leftovers = [name for name in emulator.index_names() if name not in live]
    status = json_in_process(capsys, "status")
    for name in leftovers:
        assert name in status["location"]
    json_in_process(capsys, "index", "--rebuild", str(library))
    assert len(emulator.index_names()) == 1


def test_ctrl_c_in_a_rebuild_says_it_starts_over(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    library: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_in_process(capsys, "index", str(library))
    live = emulator.index_names()

    def press_ctrl_c_at_the_copy(method: str, path: str) -> bool:
        if path == "/_reindex":
            emulator.before_request = None
            os.kill(os.getpid(), signal.SIGINT)
        return True

    emulator.before_request = press_ctrl_c_at_the_copy
    code, _, err = run_in_process(capsys, "index", "--rebuild", str(library))
    assert code == 130
    assert err.strip().splitlines() == [
        "findimage: interrupted; the rebuild was abandoned and the live index left as it was: "
        "run `findimage index --rebuild` again to start it over."
    ]
    assert emulator.index_names() == live
