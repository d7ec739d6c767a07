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
    section_lines, in_fence = [], False
    for line in text[match.end():].splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(r"#{1,3} ", line):
            break  # the next heading (a '# ' inside a code block is a shell comment)
        section_lines.append(line)
    section = "\n".join(section_lines) + "\n"
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
