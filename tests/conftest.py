"""Fixtures shared by every test: a tiny CLIP model and a clean findimage environment."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys

# No test reaches the real Hugging Face Hub. The hub client reads this once, when it is first
# imported (huggingface_hub.constants), so it is set before the imports below bring it in;
# setting it later in a test changes only what our own code reads. Tests of the hub path run
# a child process pointed at a local endpoint instead (tests/support/model_loading.py).
os.environ["HF_HUB_OFFLINE"] = "1"

from collections.abc import Iterator
from pathlib import Path

import pytest

from findimage.settings import Settings, load_settings
from tests.support.shared import MODEL_CACHE, OTHER_CLIP, TINY_CLIP, TRAINED_CLIP, made_once


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (the addopts) starts two workers per core, at most eight: most tests wait on
    a child process, a local server or a browser rather than compute, and with one worker per
    core both cores sat idle a third of the time (the fast subset on 2 cores: 6 min 47 s with
    2 workers, 4 min 49 s with 4). Eight bounds the memory, each worker holding its models."""
    return min(8, 2 * len(os.sched_getaffinity(0)))


def pytest_configure(config: pytest.Config) -> None:
    """Tests press Ctrl-C (send SIGINT) to the command lines they start, as at a terminal. A
    run started as a background job (`pytest &` in a script) inherits SIGINT ignored, passes
    that on to every process it starts, and a watcher then ignored the Ctrl-C and its test
    hung until its ceiling. With Python's handler back, the processes this one starts begin
    with the default, as a terminal's foreground commands do (tests/test_interrupts.py)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_PREPARING = pytest.StashKey[subprocess.Popen]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """The xdist controller prepares the run's shared models and exports in a process of its
    own while the workers start (tests/support/prepare_models.py): the workers spend their
    first 20 s importing and collecting, and then no longer wait, three of them idle, for
    the one making what they all need. Only for a run of the whole suite (no paths given,
    the testpaths), where all of them are needed; a run of a few files would pay for them."""
    config = session.config
    is_worker = getattr(config, "workerinput", None) is not None
    whole_suite = config.args_source is pytest.Config.ArgsSource.TESTPATHS
    if is_worker or not whole_suite or not config.getoption("numprocesses", default=0):
        return
    # The run's folder, whose popen-gwK subfolders are the workers' (as pytest-xdist's own
    # workermanage.py derives them).
    run_folder = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    with open(run_folder / "prepare-models.log", "w") as log:
        config.stash[_PREPARING] = subprocess.Popen(
            [sys.executable, "-m", "tests.support.prepare_models", str(run_folder)],
            cwd=config.rootpath,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    preparing = session.config.stash.get(_PREPARING, None)
    if preparing is not None and preparing.poll() is None:
        preparing.kill()
        preparing.wait()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow trials first, in the order they were given (random under pytest-randomly,
    whose shuffle runs before this): xdist hands each worker the next test as it finishes
    one, so a trial of a minute dealt out near the end ran on alone while the other workers
    sat idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Once collected, a worker holds about half a million objects made by its imports
    (PyTorch, transformers) that live until it exits. Frozen, the garbage collector stops
    scanning them in each full collection and at exit, where they cost each worker about
    1.5 s (three runs of the same tests, with and without)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _no_real_user_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default data dir is the user data folder, and the default model cache the user
    cache folder; no test may write into the real ones."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    mp.delenv("FINDIMAGE_DATA_DIR", raising=False)
    mp.delenv("FINDIMAGE_MODEL_CACHE", raising=False)
    yield
    mp.undo()


# The models and exports below are made once per run and shared by the xdist workers
# (tests/support/shared.py): a test must treat them as read-only.


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight CLIP folder that sentence-transformers loads for both pictures and text."""
    # Imported here, not at the top: PyTorch and transformers take about 5 s to import, and
    # the xdist controller, which loads this file before it starts the workers, never needs
    # them.
    from tests.support.tiny_clip import save_tiny_clip

    return made_once(tmp_path_factory, TINY_CLIP, save_tiny_clip)


@pytest.fixture(scope="session")
def trained_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP trained to rank "a red circle" onto red circles; about 10 s, once a run."""
    from tests.support.trained_clip import train_tiny_clip  # as in tiny_clip above

    return made_once(tmp_path_factory, TRAINED_CLIP, train_tiny_clip)


@pytest.fixture(scope="session")
def other_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another random-weight tiny CLIP (another seed): the other models an index is rebuilt
    with. One for the run, so that its export in the shared cache is made once, not once
    per test (about 5 s each)."""
    from tests.support.tiny_clip import save_other_clip  # as in tiny_clip above

    return made_once(tmp_path_factory, OTHER_CLIP, save_other_clip)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exported models shared by the whole run: each export takes seconds. The exporter locks
    each export (a model's tower at a precision; findimage/inference/export.py), so workers
    may share it."""
    return made_once(tmp_path_factory, MODEL_CACHE, lambda folder: None)


@pytest.fixture
def findimage_env(
    tmp_path: Path, tiny_clip: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """FINDIMAGE_* set for the tiny model and a fresh data dir; nothing leaks in from the host."""
    for name in list(os.environ):
        if name.startswith(("FINDIMAGE_", "SLACK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    values = {
        "FINDIMAGE_IMAGE_MODEL": str(tiny_clip),
        "FINDIMAGE_TEXT_MODEL": str(tiny_clip),
        "FINDIMAGE_DATA_DIR": str(tmp_path / "data"),
        "FINDIMAGE_MODEL_CACHE": str(model_cache),
        "FINDIMAGE_DEVICE": "cpu",
        "FINDIMAGE_BATCH_SIZE": "8",
        "HF_HUB_OFFLINE": "1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def settings(findimage_env: dict[str, str]) -> Settings:
    return load_settings()
