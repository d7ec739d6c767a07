"""What names an ingest source before it is read: the checkpoint parameters and the source's kind.

The ingest task computes these before it knows whether its checkpoint restores, so they live
apart from the readers: nothing here imports pandas, pyarrow or requests, and a restored ingest
task never does.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pricecast import storage
from pricecast.errors import PricecastError

GENERATOR = "generator"


def is_http(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def location_fingerprint(source: str) -> dict[str, Any]:
    """Size and modification time (ETag on S3) of a file source, so an edited file is re-read."""
    try:
        fs, path = storage.filesystem(source)
        fs.invalidate_cache(path)  # s3fs caches listings; an edited object must show its new ETag
        info = fs.info(path)
    except (OSError, PricecastError):
        return {"missing": True}  # reading it fails with the clear error; no key to protect
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or ""
    return {"size": info.get("size"), "modified": str(modified), "etag": str(info.get("ETag", ""))}


def last_business_day(today: date) -> date:
    """``today`` when it is a weekday, else the Friday before: the newest close a feed can have."""
    return today - timedelta(days=max(0, today.weekday() - 4))


def checkpoint_params(options: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint parameters of ingest options; a file's size/mtime/ETag make an edit count.

    Takes the options as given (not a validated spec) so that invalid options still reach the
    stage runner and fail there, logged like any other stage failure.
    """
    params = dict(options)
    source = str(options.get("source", GENERATOR))
    if source != GENERATOR and not is_http(source):
        params["source_version"] = location_fingerprint(source)
    if source == GENERATOR and not options.get("start_date"):
        # Data ending "today" differs from yesterday's: a new day must not restore old data.
        params["generated_through"] = f"{last_business_day(date.today()):%Y-%m-%d}"
    return params


__all__ = ["GENERATOR", "checkpoint_params", "is_http", "last_business_day", "location_fingerprint"]
