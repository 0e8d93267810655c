"""The README's set-up, checked against what findimage installs and what CI runs: the "Try
it" commands run as written, the model downloads name the models the settings use, and
.env.example lists every setting with its default."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from findimage.cli import main
from findimage.settings import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def _commands(block: str) -> list[str]:
    """The commands of a shell block, one per `&&` step or line, continuations joined."""
    joined = block.replace("\\\n", " ")
    steps = []
    for line in joined.splitlines():
        line = line.split("  #")[0].strip()
        steps += [step.strip() for step in line.split("&&") if step.strip()]
    return steps


def test_the_readme_test_command_is_what_ci_runs() -> None:
    (block,) = _shell_blocks(_section("Run the tests"))
    readme = _commands(block)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    test_line = ci[ci.index("# The README's test command:") + 1]
    assert readme[-1] == test_line == "python -m pytest"
    assert readme[-2] == "pip install -e '.[test]'"
    assert any(line.endswith("pip install --quiet -e '.[test]'") for line in ci)
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme


def test_try_it_installs_cpu_torch_then_findimage() -> None:
    steps = _commands(_shell_blocks(_section("Try it"))[0])
    torch = steps.index("pip install torch --index-url https://download.pytorch.org/whl/cpu")
    assert steps.index("pip install .") == torch + 1


def test_try_it_runs_as_written_and_finds_the_sample_pictures(
    findimage_env: dict[str, str],
    trained_clip: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FINDIMAGE_IMAGE_MODEL", str(trained_clip))
    monkeypatch.setenv("FINDIMAGE_TEXT_MODEL", str(trained_clip))
    monkeypatch.chdir(ROOT)
    steps = _commands(_shell_blocks(_section("Try it"))[0])
    runs = [shlex.split(step)[1:] for step in steps if step.startswith("findimage ")]
    assert [run[0] for run in runs] == ["index", "search", "search"]
    for run in runs:
        assert main(run) == 0, capsys.readouterr().err
        capsys.readouterr()
    # What the two searches find first, with the pictures' absolute paths.
    samples = ROOT / "samples"
    for run, expected in zip(runs[1:], ["red-circle.png", "blue-square.png"], strict=True):
        assert main([*run, "--json"]) == 0
        top = json.loads(capsys.readouterr().out)["results"][0]
        assert top["location"] == str(samples / expected)


def test_the_model_downloads_fetch_the_default_models_into_the_folders_the_settings_name() -> None:
    section = _section("Try it")
    downloads = re.findall(r"hf download (\S+)\s+(?:\\\n\s*)?--local-dir (\S+)", section)
    hub_ids = {
        name if "/" in name else f"sentence-transformers/{name}"
        for name in (DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL)
    }
    assert {repo for repo, _ in downloads} == hub_ids
    folders = dict(downloads)
    exports = dict(re.findall(r"export (FINDIMAGE_\w+_MODEL)=\$PWD/(\S+)", section))
    assert exports == {
        "FINDIMAGE_IMAGE_MODEL": folders["sentence-transformers/clip-ViT-B-32"],
        "FINDIMAGE_TEXT_MODEL": folders["sentence-transformers/clip-ViT-B-32-multilingual-v1"],
    }
    # `hf` comes with findimage's dependencies, and has the options the README uses.
    hf = Path(sys.executable).parent / "hf"
    help_text = subprocess.run(
        [str(hf), "download", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--local-dir" in help_text


def _env_example() -> dict[str, tuple[str, bool]]:
    """Each name in .env.example with its value and whether the line is commented out."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return {
        name: (value, bool(hash_))
        for hash_, name, value in re.findall(r"^(# )?([A-Z][A-Z0-9_]+)=(.*)$", text, re.M)
    }


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if alias is not None:
        return next(choice for choice in alias.choices if choice.isupper())
    return f"FINDIMAGE_{field.upper()}"


def test_env_example_lists_every_setting_with_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, findimage_env: dict[str, str]
) -> None:
    listed = _env_example()
    for field, info in Settings.model_fields.items():
        name = _env_name(field)
        assert name in listed, f"{name} is missing from .env.example"
        value, commented = listed[name]
        default = info.get_default(call_default_factory=True)
        if field == "data_dir":
            assert commented  # the platform's user data folder, explained beside it
        elif default is None:
            assert (value, commented) == ("", True), name
        else:
            assert not commented, name
    # The values written out are the defaults: as a .env, the file changes nothing.
    for name in findimage_env:
        monkeypatch.delenv(name)
    (tmp_path / ".env").write_text(
        (ROOT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    assert load_settings().model_dump() == Settings(_env_file=None).model_dump()


def test_the_readme_names_every_file_type_the_indexer_walks_for() -> None:
    from findimage.images import IMAGE_EXTENSIONS

    walked = _section("The command line").split("Walks the store recursively for", 1)[1]
    listed = re.findall(r"`([a-z0-9 ]+)`", walked.split("(any case", 1)[0])
    assert {f".{name}" for names in listed for name in names.split()} == IMAGE_EXTENSIONS
