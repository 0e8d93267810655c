"""The imports run one way: the Slack surfaces, then the Slack app beside the indexer, then
the core; inside the core, from the command line down to the errors; and no import circle.

The contracts are in pyproject.toml ([tool.importlinter]); import-linter reads every import
statement, those inside functions included.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("findimage", "bot", "handlers", "indexer", "web")


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_imports_run_one_way() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(_contracts())} kept, 0 broken" in run.stdout


def test_the_layers_name_every_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(config["tool"]["importlinter"]["root_packages"]) == set(PACKAGES)
    top = next(c for c in _contracts() if c["type"] == "layers" and "containers" not in c)
    named = {name.strip() for layer in top["layers"] for name in layer.split("|")}
    assert named == set(PACKAGES)


def test_every_module_of_the_core_has_its_place_in_the_core_layers() -> None:
    # A new module in findimage/ must be placed in a layer, or nothing holds its imports.
    core = next(c for c in _contracts() if c.get("containers") == ["findimage"])
    placed = {name.strip() for layer in core["layers"] for name in layer.split("|")}
    modules = {
        path.stem if path.is_file() else path.name
        for path in (ROOT / "findimage").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert modules == placed
