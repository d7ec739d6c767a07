"""A timestamp's day is the calendar day where it was stamped, not the UTC one.

A daily bar stamped ``2021-01-04 00:00:00+01:00`` (a European exchange's, as yfinance writes
them) is the 4th; converting it to UTC first makes it the 3rd, a Sunday, and every such price
lands on the day before. So where source or request dates become days (validate, the model
server) a timestamp's UTC offset is dropped, not applied.
"""

from __future__ import annotations

import re

# A UTC offset (or Z) right after a time of day: "...00:00:00+01:00", "...T23:30Z", "... 00:00 +0900".
# Only after a time, so a date such as 04-01-2021 keeps its "-2021".
UTC_OFFSET = re.compile(r"(\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*(?:Z|[+-]\d\d(?::?\d\d)?)$")


def strip_utc_offset(text: str) -> str:
    """``text`` without a trailing UTC offset after its time of day (the local wall time)."""
    return UTC_OFFSET.sub(r"\1", text)


__all__ = ["UTC_OFFSET", "strip_utc_offset"]
