"""Reading a Dockerfile's instructions, to run its install steps where there is no Docker."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str


def instructions(text: str) -> list[Instruction]:
    """The instructions, with comments dropped and backslash-continued lines joined.

    As Docker reads them (https://docs.docker.com/reference/dockerfile/#format): comment
    lines are removed before instructions are processed, also inside a continued instruction,
    and a backslash (the default escape character, #escape) at a line's end continues it.
    """
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, argument = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), argument.strip()))
        pending = ""
    return result


def copies(found: list[Instruction]) -> list[tuple[list[str], str]]:
    """Each COPY as (sources, destination)."""
    result = []
    for instruction in found:
        if instruction.keyword == "COPY":
            *sources, destination = shlex.split(instruction.argument)
            result.append((sources, destination))
    return result
