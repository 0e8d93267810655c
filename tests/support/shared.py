"""Expensive things a test session makes once, shared by every pytest-xdist worker.

As pytest-xdist's docs describe ("Making session-scoped fixtures execute only once",
https://pytest-xdist.readthedocs.io/en/stable/how-to.html): each worker is a process of its
own with its own session fixtures, so the first worker makes the thing in the folder the
workers' temporary folders share (the run's base temporary folder) under a file lock, and
the others wait for it and reuse it. Without xdist it is made in this session's folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

DONE = ".complete"
# The run's shared models and export cache, as named in the run's folder (tests/conftest.py
# and tests/support/prepare_models.py).
TINY_CLIP, TRAINED_CLIP, OTHER_CLIP, MODEL_CACHE = (
    "tiny-clip",
    "trained-clip",
    "other-clip",
    "model-cache",
)


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]
) -> Path:
    """The folder `name`, filled by `make(folder)` by exactly one worker of this run."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name, numbered=False)
        make(folder)
        return folder
    # Each worker's base folder is `pytest-N/popen-gwK`: `pytest-N` is this run's alone.
    return made_once_in(tmp_path_factory.getbasetemp().parent, name, make)


def made_once_in(run_folder: Path, name: str, make: Callable[[Path], object]) -> Path:
    """`run_folder / name`, filled by `make(folder)` by whichever process of the run comes
    first (a worker, or the controller's preparation in tests/support/prepare_models.py);
    the others wait for it."""
    folder = run_folder / name
    with FileLock(f"{folder}.lock"):
        if not (folder / DONE).exists():
            folder.mkdir(exist_ok=True)
            make(folder)
            (folder / DONE).touch()
    return folder
