"""Reading and writing the tables stages pass to each other (Parquet, written atomically)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a stage's Parquet artifact."""
    return pd.read_parquet(path, columns=columns)


def write_frame(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as Parquet to ``path`` via a temporary file, so no reader sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False, compression="zstd")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
