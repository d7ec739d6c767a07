"""A trained store shared by the pipeline tests: one full local run, reused read-only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

SMALL = {"tickers": 4, "days": 320, "n_windows": 2}


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file below root (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")
    }
