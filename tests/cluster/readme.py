"""The README's shell blocks as command lines, so the cluster tests run exactly what users read."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def bash_block(heading: str, index: int = 0, readme: Path = README) -> list[str]:
    """The command lines of the ``index``-th ```bash block under ``heading`` (a Markdown heading's
    text): continuation lines joined, comments and blank lines dropped."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(heading)}\s*$", text, flags=re.M)
    if match is None:
        raise AssertionError(f"README.md has no heading {heading!r}")
    rest = text[match.end():]
    next_heading = re.search(r"^#{1,3} ", rest, flags=re.M)
    section = rest[: next_heading.start()] if next_heading else rest
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    if len(blocks) <= index:
        raise AssertionError(f"README.md's section {heading!r} has no bash block #{index}")
    joined = blocks[index].replace("\\\n", " ")
    lines = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()  # trailing comments (none of the commands quote a '#')
        if line and not line.startswith("#"):
            lines.append(" ".join(line.split()))
    return lines


def fill(line: str, substitutions: dict[str, str]) -> str:
    """A README command line with placeholders like ``<that version>`` filled in, for ``bash -c``."""
    for placeholder, value in substitutions.items():
        line = line.replace(placeholder, value)
    leftover = re.findall(r"<[a-z][^<>]*>", line)
    assert not leftover, f"unfilled placeholder(s) {leftover} in README command: {line}"
    return line
