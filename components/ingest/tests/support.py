"""Test support shared by the ingest tests: read a file as the stage does, write Parquet bytes."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from components.ingest.core import ingest_frame, load_source_spec


def ingest_file(path: str | Path, **options: object) -> pd.DataFrame:
    """The frame ingest makes of the source at ``path`` (its columns mapped)."""
    return ingest_frame(load_source_spec(None, source=str(path), **options)).frame


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
