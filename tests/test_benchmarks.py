"""Every benchmark in bench/ runs: its `--quick` mode on tiny inputs (the tiny CLIP, a few
vectors or pictures), in a child process as `python -m bench.NAME`, so a benchmark that a
change breaks fails the suite instead of rotting until someone measures again. The figures
it prints are not checked: speed is measured by hand (BENCHMARKS.md), not asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiny_multilingual import save_tiny_multilingual

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("--image-model", "{model}", "--text-model", "{model}")
# The tiny CLIP takes 32 tokens and does not truncate; the agreement benchmark's texts are
# longer, as real queries may be, so its text model is the tiny multilingual one (truncates).

# Each benchmark's arguments on top of `--quick`: tiny models and sizes, a work folder.
TINY_RUNS: dict[str, tuple[str, ...]] = {
    "bench_1m": ("--count", "2000", "--work", "{work}"),
    "bench_agreement": ("--image-model", "{model}", "--text-model", "{text}", "--work", "{work}"),
    "bench_bot_memory": (*MODELS, "--work", "{work}"),
    "bench_embedded_search": ("--count", "500", "--dims", "32", "--repeats", "3"),
    # A tiny random-weight vision tower on the CPU (no GPU here); it loads no findimage model.
    "bench_gpu": ("--seconds", "0.2"),
    "bench_indexing": ("--count", "3", "--image-model", "{model}", "--work", "{work}"),
    "bench_query": (*MODELS, "--sizes", "300", "--work", "{work}"),
    "bench_shards": ("--count", "6", "--image-model", "{model}", "--work", "{work}"),
    "bench_startup": ("--pictures", "20", "--rounds", "1"),
    "bench_watch": ("--image-model", "{model}", "--work", "{work}"),
    # Runs no model: `like:` queries over random vectors, in Debian's headless chromium.
    "bench_web": ("--work", "{work}"),
}


def test_every_benchmark_has_a_tiny_run() -> None:
    found = {path.stem for path in (ROOT / "bench").glob("bench_*.py")}
    assert found == set(TINY_RUNS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY_RUNS))
def test_the_benchmark_runs_quick_on_tiny_inputs(
    name: str, tiny_clip: Path, model_cache: Path, tmp_path: Path
) -> None:
    if name == "bench_web" and not Path("/usr/bin/chromedriver").exists():
        missing = "Debian's chromium and chromium-driver are not installed (apt-get install)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    text = save_tiny_multilingual(tmp_path / "multilingual") if "{text}" in TINY_RUNS[name] else ""
    work = tmp_path / "work"
    (work / "model-cache").parent.mkdir(parents=True)
    # The exports the suite made already: the benchmarks keep theirs under the work folder.
    (work / "model-cache").symlink_to(model_cache, target_is_directory=True)
    arguments = [a.format(model=tiny_clip, text=text, work=work) for a in TINY_RUNS[name]]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FINDIMAGE_", "SLACK_"))
    }
    env.update(HF_HUB_OFFLINE="1", FINDIMAGE_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "|" in done.stdout or "median" in done.stdout, done.stdout[-2000:]
