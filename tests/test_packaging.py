"""The package's metadata: an SPDX license with its file, and classifiers."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_license_is_an_spdx_expression_shipped_with_its_text() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # A string (PEP 639): the TOML-table form is deprecated by setuptools.
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")
    # PEP 639 forbids a license classifier beside a license expression.
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_the_project_says_what_it_runs_on() -> None:
    # No [project.urls] yet: the project has no public home, and an address made up here
    # would send people to someone else's page. Add them when it is published.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    minimum = project["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {minimum}" in project["classifiers"]
