"""The fenced blocks of the documentation, and what the docs convention says to do with each.

Every fenced block of README.md and docs/**/*.md runs unless the line right before its opening
fence is a marker: `<!-- not-run: REASON -->` (shown only) or `<!-- file: PATH -->` (its content is
written to PATH, for later blocks of the page). Blocks tagged `text`, `console-output`, `output` or
with no language are illustration. A page whose first line is `<!-- generated: … -->` is skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|file)\s*:\s*(?P<value>.*?)\s*-->\s*$")
GENERATED = re.compile(r"^\s*<!--\s*generated\s*:\s*(?P<reason>.*?)\s*-->")
ILLUSTRATION = {"", "text", "console-output", "output"}
SHELL = {"bash", "sh", "shell"}


@dataclass(frozen=True)
class Block:
    page: str            # relative to the repository
    line: int            # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None = None    # the reason, when marked
    file: str | None = None       # the path, when marked

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def action(self) -> str:
        """What the runner does with it: skip, write, shell, python, toml or unknown."""
        if self.not_run is not None:
            return "skip"
        if self.file is not None:
            return "write"
        if self.language in ILLUSTRATION:
            return "skip"
        if self.language in SHELL:
            return "shell"
        if self.language in ("python", "py"):
            return "python"
        if self.language == "toml":
            return "toml"
        return "unknown"


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def generated(path: Path) -> str | None:
    """The reason a page is generated (and so not run), from its first line's marker."""
    first = path.read_text().split("\n", 1)[0]
    match = GENERATED.match(first)
    return match.group("reason") if match else None


def blocks(path: Path, root: Path = REPO) -> list[Block]:
    page = str(path.relative_to(root))
    lines = path.read_text().split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening.group("fence"), opening.group("indent")
        language = opening.group("info").strip().split(" ")[0].split("{")[0].lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence[0] * len(fence))
                                      and lines[i].strip().strip(fence[0]) == ""):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{page}:{start + 1}: a fenced block that never closes")
        i += 1
        marker = MARKER.match(lines[start - 1]) if start else None
        kind = marker.group("kind") if marker else None
        value = marker.group("value") if marker else None
        if kind == "not-run" and not value:
            raise AssertionError(f"{page}:{start + 1}: a not-run marker must say why")
        found.append(Block(page, start + 1, language, "\n".join(body) + "\n",
                           not_run=value if kind == "not-run" else None,
                           file=value if kind == "file" else None))
    return found
