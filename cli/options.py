"""Options that more than one command group takes: one definition each, so help and flags agree."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

StoreOpt = Annotated[
    Optional[str],
    typer.Option("--store", help="Model store URL (file://DIR or s3://BUCKET/PREFIX); default PRICECAST_STORE_URL."),
]
