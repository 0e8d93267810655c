"""The page's benchmark keeps working: its quick mode runs to its table (slow: a browser)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_page_benchmark_runs_in_its_quick_mode(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromedriver").exists():
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_web", "--quick", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| first result painted |" in done.stdout
    assert "| all 50 thumbnails decoded |" in done.stdout
