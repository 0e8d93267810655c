"""The Dockerfile and docker-compose.yml, tested as far as a machine without Docker allows:
the compose file's structure, what the image copies, and the Dockerfile's install commands
run for real in a fresh virtual environment. `docker build` and `docker compose up` are not
run here (no Docker engine)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.dockerfile import copies, instructions

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_the_bot_runs_the_image_it_builds_and_installs_nothing_when_it_starts() -> None:
    bot = _compose()["services"]["bot"]
    assert bot["build"] == "."
    # Replaced by `docker compose run --rm bot findimage index`: it must not be what installs.
    assert bot["command"] == ["findimage", "serve"]
    assert "entrypoint" not in bot
    assert bot["env_file"] == [{"path": ".env", "required": False}]
    assert bot["environment"]["FINDIMAGE_STORE"] == "/images"


def test_the_store_is_read_only_and_the_models_are_cached_in_a_volume() -> None:
    compose = _compose()
    bot = compose["services"]["bot"]
    # SOURCE:TARGET[:MODE], where SOURCE may hold ${VAR:-default}.
    mounts = {re.fullmatch(r"(.+):(/[^:]*)(:ro|:rw)?", v).group(2): v for v in bot["volumes"]}
    assert set(mounts) == {"/images", "/models"}, "no source folder is mounted"
    assert mounts["/images"].endswith(":ro")
    assert mounts["/models"] == "models:/models"
    assert "models" in compose["volumes"]
    # Hugging Face caches where HF_HOME points, in the image and in the service alike.
    env = [i.argument for i in DOCKERFILE if i.keyword == "ENV"]
    assert any("HF_HOME=/models" in line for line in env)
    assert bot["environment"]["HF_HOME"] == "/models"


def test_the_image_copies_everything_pip_install_needs_and_no_secrets() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    copied = {source.rstrip("/") for sources, _ in copies(DOCKERFILE) for source in sources}
    needed = {"pyproject.toml", project["project"]["readme"], *project["project"]["license-files"]}
    needed |= {
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert needed <= copied
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored
    assert not needed & set(ignored)


def test_torch_is_the_cpu_build_installed_before_findimage() -> None:
    runs = [i.argument for i in DOCKERFILE if i.keyword == "RUN"]
    torch = next(i for i, run in enumerate(runs) if "torch" in run)
    findimage = runs.index("pip install .")
    assert torch < findimage
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]


@pytest.mark.slow
def test_the_dockerfiles_install_commands_work_in_a_fresh_venv(tmp_path: Path) -> None:
    """Each `pip install` RUN, as written, in a fresh venv and a copy of the build context.

    PIP_RETRIES=0 only shortens pip's retries where PyTorch's index cannot be reached (as on
    the machines this project is developed on); pip then finds the same CPU wheel locally.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    workdir = tmp_path / "context"
    for sources, _ in copies(DOCKERFILE):
        for source in sources:
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, workdir / source, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                workdir.mkdir(exist_ok=True)
                shutil.copy2(ROOT / source, workdir / source)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "PIP_RETRIES": "0",
    }
    for instruction in DOCKERFILE:
        if instruction.keyword == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(instruction.argument)))
    installs = [
        i.argument
        for i in DOCKERFILE
        if i.keyword == "RUN" and i.argument.startswith("pip install")
    ]
    assert len(installs) == 2
    for command in installs:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    torch = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch; print(torch.version.cuda)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert torch.stdout.strip() == "None", "the CPU build, without CUDA"
    help_text = subprocess.run(
        [str(venv / "bin" / "findimage"), "index", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--replace" in help_text.stdout
