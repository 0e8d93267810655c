"""The Dockerfile and docker-compose.yml, tested as far as a machine without Docker allows:
the compose file's structure, what the image copies, the Dockerfile's install commands read
by pip's own parser, and a wheel built offline from the copied context. `docker build` and
`docker compose up` are not run here (no Docker engine, and no PyTorch wheel index)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

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
    assert bot["environment"]["FINDIMAGE_LIBRARY"] == "/images"


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


def _pip_installs() -> list[list[str]]:
    """Each `RUN pip install ...`, split as the shell splits it."""
    runs = [i.argument for i in DOCKERFILE if i.keyword == "RUN"]
    return [shlex.split(run) for run in runs if run.startswith("pip install")]


def test_the_dockerfiles_install_commands_are_valid_pip_commands() -> None:
    """Each `pip install` RUN, as written, read by pip's own option parser (a misspelt or
    removed option fails here), its requirements by `packaging`. Nothing is installed: the
    torch step needs PyTorch's wheel index, which the test machines cannot reach."""
    from packaging.requirements import Requirement
    from pip._internal.commands import create_command

    installs = _pip_installs()
    assert len(installs) == 2
    for words in installs:
        _, arguments = create_command("install").parse_args(words[2:])
        assert arguments, f"{words} installs nothing"
        for argument in arguments:
            if argument != ".":
                Requirement(argument)
    torch_options, torch_arguments = create_command("install").parse_args(installs[0][2:])
    assert [Requirement(a).name for a in torch_arguments] == ["torch"]
    assert torch_options.index_url == "https://download.pytorch.org/whl/cpu"
    assert installs[1][2:] == ["."]


def test_the_copied_build_context_builds_findimage_offline(tmp_path: Path) -> None:
    """`pip install .` in the image builds from what the COPY lines put there: built here from
    a copy of exactly those files, without an index (the build backend of this environment,
    which pyproject.toml's build-system bounds)."""
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
    built = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--wheel-dir", str(tmp_path / "wheels"), "."),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("findimage-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for package in ("findimage", "bot", "handlers", "indexer", "web"):
        assert f"{package}/__init__.py" in names
    assert any(name.endswith("entry_points.txt") for name in names)


# What the compose file itself decides for the bot: the cluster it starts, the mount of the
# pictures and where the models are kept. Every other setting comes from .env.
COMPOSE_DECIDES = {
    "FINDIMAGE_BACKEND",
    "FINDIMAGE_ES_URL",
    "FINDIMAGE_ES_USER",
    "FINDIMAGE_ES_PASSWORD",
    "FINDIMAGE_LIBRARY",
    "HF_HOME",
    "FINDIMAGE_MODEL_CACHE",
}


def test_every_other_setting_of_the_bot_is_read_from_env() -> None:
    environment = _compose()["services"]["bot"]["environment"]
    for name, value in environment.items():
        if name not in COMPOSE_DECIDES:
            # ${NAME-default} or ${NAME:-default}: .env's value when it has one.
            assert re.fullmatch(rf"\$\{{{name}:?-[^}}]*\}}", value), (name, value)
    assert "FINDIMAGE_ES_TEXT_MODEL_ID" in environment


def test_the_exported_models_are_kept_on_the_models_volume() -> None:
    bot = _compose()["services"]["bot"]
    assert bot["environment"]["FINDIMAGE_MODEL_CACHE"].startswith("/models/")
    env = " ".join(i.argument for i in DOCKERFILE if i.keyword == "ENV")
    assert "FINDIMAGE_MODEL_CACHE=/models/" in env


def test_every_port_is_published_on_127_0_0_1_unless_env_says_otherwise() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            # HOST_IP:HOST_PORT:CONTAINER_PORT, where HOST_IP may be ${VAR:-127.0.0.1}.
            assert re.match(r"(127\.0\.0\.1|\$\{\w+:-127\.0\.0\.1\}):", port), (name, port)


DOCKER_STEPS = [
    "docker compose up -d elasticsearch",
    "eland_import_hub_model",
    "docker compose run --rm bot findimage index",
    "docker compose up -d bot",
]


def _docker_block(markdown: str, heading: str) -> str:
    """The first ```sh block under `heading`."""
    section = markdown.split(heading, 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def _steps(text: str) -> list[str]:
    found = {step: text.find(step) for step in DOCKER_STEPS}
    assert all(at >= 0 for at in found.values()), found
    return sorted(found, key=found.__getitem__)


def test_the_readme_the_elasticsearch_guide_and_the_compose_file_give_one_order() -> None:
    readme = _docker_block((ROOT / "README.md").read_text(encoding="utf-8"), "## Docker Compose")
    guide = _docker_block(
        (ROOT / "docs/elasticsearch.md").read_text(encoding="utf-8"),
        "## Quick start with Docker Compose",
    )
    header = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").split("\nname:", 1)[0]
    # Elasticsearch, the text model, the index, the bot.
    assert _steps(readme) == _steps(guide) == _steps(header) == DOCKER_STEPS
    # No other `docker compose up` before the index exists (the bot would start on nothing).
    assert "docker compose up -d\n" not in readme + guide


def test_the_eland_command_speaks_to_the_compose_cluster_as_it_is_set_up() -> None:
    elasticsearch = _compose()["services"]["elasticsearch"]
    assert elasticsearch["environment"]["xpack.security.http.ssl.enabled"] == "false"
    published = elasticsearch["ports"][0].split(":")
    url = f"http://localhost:{published[-2]}"
    for path, heading in (
        ("README.md", "## Docker Compose"),
        ("docs/elasticsearch.md", "## Quick start with Docker Compose"),
    ):
        block = _docker_block((ROOT / path).read_text(encoding="utf-8"), heading)
        words = shlex.split(block.replace("\\\n", " "), comments=True)
        at = words.index("eland_import_hub_model")
        eland = words[at:]
        assert eland[eland.index("--url") + 1] == url, path
        # The compose cluster has the elastic user and ELASTIC_PASSWORD, no API key.
        assert eland[eland.index("--es-username") + 1] == "elastic", path
        assert eland[eland.index("--es-password") + 1] == "$ELASTIC_PASSWORD", path
        assert "--es-api-key" not in eland, path


def test_the_trial_licence_and_its_30_days_are_said() -> None:
    trial = _compose()["services"]["elasticsearch"]["environment"]
    assert trial["xpack.license.self_generated.type"] == "trial"
    for path in ("README.md", "docs/elasticsearch.md", "docker-compose.yml"):
        text = " ".join((ROOT / path).read_text(encoding="utf-8").split())
        assert re.search(r"trial licen[cs]e.{0,60}30 days", text, re.I), path
