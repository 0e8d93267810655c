"""`findimage index --shard K/N` on Elasticsearch (the emulator): N workers, real child
processes at once, do exactly what one run does; a killed worker is run again; a rebuild
spread over workers goes live once, after the last shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml

from findimage.documents import document_id
from findimage.stores.elasticsearch.versions import VersionedElasticsearch
from indexer.shards import shard_of
from tests.support.cli import FINDIMAGE, json_in_process, run_in_process
from tests.support.es_emulator import ES_9, ElasticsearchEmulator
from tests.support.pictures import make_library
from tests.support.s3 import S3Service, credentials_env, moto_s3
from tests.support.waiting import CEILING_SECONDS, wait_until

ALIAS = "findimage-images"
WORKERS = 3


def _worker(number: int, library: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FINDIMAGE, "index", str(library), "--shard", f"{number}/{WORKERS}", "--json", *extra],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(worker: subprocess.Popen[str]) -> dict:
    out, err = worker.communicate(timeout=CEILING_SECONDS)
    assert worker.returncode == 0, err
    return json.loads(out)


def _all_workers(library: Path, *extra: str) -> list[dict]:
    """The N workers at once; their reports."""
    workers = [_worker(number, library, *extra) for number in range(1, WORKERS + 1)]
    return [_finish(worker) for worker in workers]


def _bulk_actions(emulator: ElasticsearchEmulator, op: str, index_prefix: str) -> Counter[str]:
    """How many times each document id was sent in a `_bulk` `op` action to an index whose
    name starts with `index_prefix`, from the emulator's request log."""
    sent: Counter[str] = Counter()
    for request in emulator.calls("POST", "/_bulk") + emulator.calls("PUT", "/_bulk"):
        lines = [json.loads(line) for line in request.body.decode().splitlines() if line]
        place = 0
        while place < len(lines):
            (action, meta), place = next(iter(lines[place].items())), place + 1
            if action != "delete":
                place += 1  # the source line
            if action == op and meta.get("_index", "").startswith(index_prefix):
                sent[meta["_id"]] += 1
    return sent


def _library_ids(library: Path) -> set[str]:
    return {document_id(p.relative_to(library).as_posix()) for p in library.rglob("*.*")}


def _indexed_ids(emulator: ElasticsearchEmulator, alias: str) -> set[str]:
    [concrete] = emulator.aliases()[alias]
    return set(emulator.document_ids(concrete))


@pytest.fixture
def emulator() -> ElasticsearchEmulator:
    """One version is enough here: the version differences are covered by test_es_cli.py."""
    with ElasticsearchEmulator(version=ES_9) as running:
        yield running


@pytest.mark.slow
def test_three_workers_at_once_write_every_picture_once_and_a_second_round_stays_exact(
    es_env: dict[str, str], emulator: ElasticsearchEmulator, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    pictures = make_library(library, 300)

    reports = _all_workers(library)

    assert sum(report["indexed"] for report in reports) == 300
    assert _indexed_ids(emulator, ALIAS) == _library_ids(library)
    written = _bulk_actions(emulator, "index", ALIAS)
    assert set(written) == _library_ids(library)
    assert set(written.values()) == {1}, "a document was written twice"
    status = json_in_process_status(es_env)
    assert [(s["shard"], s["done"]) for s in status["shards"]] == [
        (f"{k}/{WORKERS}", True) for k in range(1, WORKERS + 1)
    ]
    assert sum(s["written"] for s in status["shards"]) == 300

    # Second round: 20 deleted, 20 renamed (some into another shard), the rest untouched.
    emulator.requests.clear()
    deleted, renamed = pictures[:20], pictures[20:40]
    for picture in deleted:
        picture.unlink()
    moves = {}
    for picture in renamed:
        moves[picture] = picture.with_name(f"renamed-{picture.name}")
        picture.rename(moves[picture])
    relative = {
        old.relative_to(library).as_posix(): new.relative_to(library).as_posix()
        for old, new in moves.items()
    }
    assert any(shard_of(old, WORKERS) != shard_of(new, WORKERS) for old, new in relative.items())

    reports = _all_workers(library)

    assert _indexed_ids(emulator, ALIAS) == _library_ids(library)
    written = _bulk_actions(emulator, "index", ALIAS)
    assert written == Counter(document_id(new) for new in relative.values())
    removed = _bulk_actions(emulator, "delete", ALIAS)
    gone = [*(p.relative_to(library).as_posix() for p in deleted), *relative]
    assert removed == Counter(document_id(path) for path in gone)
    assert sum(report["deleted"] for report in reports) == 40
    assert sum(report["unchanged"] for report in reports) == 260


def json_in_process_status(es_env: dict[str, str]) -> dict:
    done = subprocess.run(
        [*FINDIMAGE, "status", "--json"],
        env={**os.environ, **es_env},
        capture_output=True,
        text=True,
        timeout=CEILING_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_worker_killed_mid_run_and_run_again_ends_exact(
    es_env: dict[str, str], emulator: ElasticsearchEmulator, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 60)
    for number in (1, 2):
        _finish(_worker(number, library))
    emulator.requests.clear()
    wrote_some, killed = threading.Event(), threading.Event()

    def hold_after_the_first_write(method: str, path: str) -> bool:
        # Worker 3's first bulk write goes through; the next waits until it is killed, then
        # is dropped unserved: the kill lands mid-run, after it wrote some.
        if not path.endswith("/_bulk"):
            return True
        if not wrote_some.is_set():
            wrote_some.set()
            return True
        killed.wait(CEILING_SECONDS)
        return False

    emulator.before_request = hold_after_the_first_write
    worker = _worker(3, library)
    wait_until(wrote_some.is_set, CEILING_SECONDS, "worker 3's first write")
    wait_until(
        lambda: bool(emulator.document_ids(f"{ALIAS}-first")) and _served_first_write(emulator),
        CEILING_SECONDS,
        "worker 3's first write stored",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(CEILING_SECONDS)
    killed.set()
    emulator.before_request = None
    first = _bulk_actions(emulator, "index", ALIAS)
    assert 0 < len(first) < sum(shard_of(p, WORKERS) == 3 for p in _paths(library))

    _finish(_worker(3, library))

    assert _indexed_ids(emulator, ALIAS) == _library_ids(library)
    written = _bulk_actions(emulator, "index", ALIAS)
    shard_three = {document_id(p) for p in _paths(library) if shard_of(p, WORKERS) == 3}
    assert set(written) == shard_three
    assert set(written.values()) == {1}, "the run again wrote again what the killed one wrote"


def _served_first_write(emulator: ElasticsearchEmulator) -> bool:
    written = _bulk_actions(emulator, "index", ALIAS)
    stored = set(emulator.document_ids(f"{ALIAS}-first"))
    return bool(written) and set(written) <= stored


def _paths(library: Path) -> list[str]:
    return [p.relative_to(library).as_posix() for p in library.rglob("*.*")]


def test_a_rebuild_over_three_workers_goes_live_once_after_the_last_shard(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    trained_clip: Path,
) -> None:
    library = tmp_path / "library"
    make_library(library, 24)
    json_in_process(capsys, "index", str(library))
    [old] = emulator.aliases()[ALIAS]
    # A rebuild with other models: the workers embed every picture again.
    monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", str(trained_clip))
    monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", str(trained_clip))

    code, out, err = run_in_process(capsys, "index", "--rebuild", "--prepare")
    assert code == 0, err
    name = out.strip()
    assert name.startswith(f"{ALIAS}-") and name != old
    for number in (1, 2):
        code, _, err = run_in_process(
            capsys, "index", str(library), "--shard", f"{number}/3", "--into", name, "--json"
        )
        assert code == 0, err
    emulator.requests.clear()

    code, out, err = run_in_process(capsys, "index", "--rebuild", "--swap", name)

    assert code == 1
    assert err.count("\n") == 1 and "shard 3/3 has not reported done" in err, err
    assert emulator.aliases()[ALIAS] == [old]
    assert emulator.calls("POST", "/_aliases") == []

    code, _, err = run_in_process(
        capsys, "index", str(library), "--shard", "3/3", "--into", name, "--json"
    )
    assert code == 0, err
    code, out, err = run_in_process(capsys, "index", "--rebuild", "--swap", name)

    assert code == 0, err
    assert emulator.aliases()[ALIAS] == [name]
    assert len(emulator.calls("POST", "/_aliases")) == 1
    assert old not in emulator.index_names()
    assert set(emulator.document_ids(name)) == _library_ids(library)
    status = json_in_process(capsys, "status")
    assert (status["count"], status["image_model"]) == (24, str(trained_clip))
    assert {s["index"] for s in status["shards"]} == {name}
    assert sum(s["written"] for s in status["shards"]) == 24
    code, out, _ = run_in_process(capsys, "status")
    assert code == 0
    shard_lines = [line for line in out.splitlines() if line.startswith("shard ")]
    assert [line.split(":")[0] for line in shard_lines] == [
        f"shard {k}/3 into {name}" for k in (1, 2, 3)
    ]
    assert all(line.endswith("in its current run, done") for line in shard_lines)


def test_the_embedded_store_refuses_shards_with_one_sentence(
    findimage_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "library"
    make_library(library, 2)

    code, out, err = run_in_process(capsys, "index", str(library), "--shard", "1/2")

    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "FINDIMAGE_BACKEND=elasticsearch" in err


@pytest.mark.parametrize("value", ["0/3", "4/3", "x"])
def test_a_bad_shard_is_one_sentence(
    es_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    code, out, err = run_in_process(capsys, "index", str(tmp_path), "--shard", value)

    assert code == 2 and out == ""
    assert err.startswith("findimage: --shard") and err.count("\n") == 1


def test_workers_one_after_another_split_an_s3_library_exactly(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in credentials_env().items():
        monkeypatch.setenv(name, value)
    with moto_s3() as s3:
        s3.client().create_bucket(Bucket="pictures")
        pictures = make_library_in_bucket(s3, 12)
        monkeypatch.setenv("FINDIMAGE_S3_ENDPOINT_URL", s3.endpoint_url)
        url = "s3://pictures/library"

        reports = [
            json_in_process(capsys, "index", url, "--shard", f"{k}/{WORKERS}")
            for k in range(1, WORKERS + 1)
        ]
        s3.client().delete_object(Bucket="pictures", Key=f"library/{pictures[0]}")
        again = [
            json_in_process(capsys, "index", url, "--shard", f"{k}/{WORKERS}")
            for k in range(1, WORKERS + 1)
        ]

    assert [r["indexed"] for r in reports] == [
        sum(shard_of(p, WORKERS) == k for p in pictures) for k in range(1, WORKERS + 1)
    ]
    assert [r["deleted"] for r in again] == [
        int(shard_of(pictures[0], WORKERS) == k) for k in range(1, WORKERS + 1)
    ]
    assert _indexed_ids(emulator, ALIAS) == {document_id(p) for p in pictures[1:]}
    assert set(_bulk_actions(emulator, "index", ALIAS).values()) == {1}


def make_library_in_bucket(s3: S3Service, count: int) -> list[str]:
    """`count` pictures under s3://pictures/library, as make_library draws them; their
    library-relative paths."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        paths = make_library(root, count)
        relative = [p.relative_to(root).as_posix() for p in paths]
        for path, key in zip(paths, relative, strict=True):
            s3.put("pictures", f"library/{key}", path.read_bytes())
    return relative


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--shard", "1/2", "--watch"), "--watch cannot go with --shard"),
        (("--shard", "1/2", "--rebuild"), "--shard cannot go with --rebuild or --replace"),
        (("--shard", "1/2", "--replace"), "--shard cannot go with --rebuild or --replace"),
        (("--into", "findimage-images-x"), "--into goes with --shard K/N"),
        (("--prepare",), "--prepare goes with --rebuild"),
        (("--swap", "x"), "--swap goes with --rebuild"),
        (("--rebuild", "--prepare", "--swap", "x"), "--prepare and --swap are two steps"),
    ],
)
def test_options_that_do_not_go_together_are_a_usage_error(
    es_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    said: str,
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run_in_process(capsys, "index", *args)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err


def test_into_refuses_a_name_findimage_did_not_give(
    es_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "library"
    make_library(library, 2)
    json_in_process(capsys, "index", str(library))

    code, _, err = run_in_process(
        capsys, "index", str(library), "--shard", "1/2", "--into", "someone-elses-index"
    )

    assert code == 2
    assert "is not a name findimage gives a new index" in err and err.count("\n") == 1


def test_a_rebuild_over_workers_with_unchanged_models_copies_and_embeds_nothing(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    library = tmp_path / "library"
    make_library(library, 6)
    json_in_process(capsys, "index", str(library))
    code, out, err = run_in_process(capsys, "index", "--rebuild", "--prepare")
    assert code == 0, err
    name = out.strip()
    assert len(emulator.calls("POST", "/_reindex")) == 1

    reports = [
        json_in_process(capsys, "index", str(library), "--shard", f"{k}/2", "--into", name)
        for k in (1, 2)
    ]
    code, out, err = run_in_process(capsys, "index", "--rebuild", "--swap", name)

    assert code == 0, err
    assert [(r["indexed"], r["deleted"]) for r in reports] == [(0, 0), (0, 0)]
    assert sum(r["unchanged"] for r in reports) == 6
    assert emulator.aliases()[ALIAS] == [name]
    assert set(emulator.document_ids(name)) == _library_ids(library)
    code, out, _ = run_in_process(capsys, "index", "--rebuild", "--swap", name)
    assert (code, out.strip()) == (0, f"{name} was already live behind {ALIAS}.")


def test_a_progress_index_findimage_did_not_make_is_left_alone(
    es_env: dict[str, str],
    emulator: ElasticsearchEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = VersionedElasticsearch(emulator.url)
    client.ensure_version(emulator.url, (8, 0))
    client.indices.create(index=f"{ALIAS}-shards", mappings={"properties": {"x": {"type": "long"}}})
    client.index(index=f"{ALIAS}-shards", id="theirs", document={"x": 1}, refresh=True)
    library = tmp_path / "library"
    make_library(library, 2)

    code, _, err = run_in_process(capsys, "index", str(library), "--shard", "1/1")

    assert code == 2
    assert f"The Elasticsearch index {ALIAS}-shards was not created by findimage" in err
    assert emulator.document_ids(f"{ALIAS}-shards") == ["theirs"]
    client.close()


@pytest.mark.slow
def test_the_kubernetes_jobs_own_command_in_each_pod_splits_the_library_exactly(
    es_env: dict[str, str], emulator: ElasticsearchEmulator, tmp_path: Path
) -> None:
    """deploy/kubernetes/indexer-job.yaml's container command, exactly as written, run by a
    real /bin/sh once per completion index at the same time, each with the real `findimage`:
    together they index the library once (what the Job does on a cluster)."""
    manifest = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "indexer-job.yaml"
    [job] = [d for d in yaml.safe_load_all(manifest.read_text()) if d and d["kind"] == "Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    shards = next(e["value"] for e in container["env"] if e["name"] == "SHARDS")
    findimage = Path(sys.executable).parent / "findimage"  # the console script pip installed
    assert findimage.exists()
    library = tmp_path / "library"
    make_library(library, 40)
    pods = [
        subprocess.Popen(
            container["command"],
            env={
                **es_env,
                "PATH": f"{findimage.parent}{os.pathsep}{os.environ['PATH']}",
                # Set by the Job controller in each pod of an Indexed Job
                # (https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode).
                "JOB_COMPLETION_INDEX": str(index),
                "SHARDS": shards,
                # The ConfigMap's library, mounted at /library in the pod.
                "FINDIMAGE_LIBRARY": str(library),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(job["spec"]["completions"])
    ]
    for pod in pods:
        _, err = pod.communicate(timeout=CEILING_SECONDS)
        assert pod.returncode == 0, err

    assert _indexed_ids(emulator, ALIAS) == _library_ids(library)
    written = _bulk_actions(emulator, "index", ALIAS)
    assert set(written) == _library_ids(library)
    assert set(written.values()) == {1}, "a document was written twice"
