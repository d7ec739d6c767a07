"""A timestamp's day is the calendar day where it was stamped, not the UTC one; and numbers as dates.

A daily bar stamped ``2021-01-04 00:00:00+01:00`` (a European exchange's, as yfinance writes
them) is the 4th; converting it to UTC first makes it the 3rd, a Sunday, and every such price
lands on the day before. So where source or request dates become days (validate, the model
server) a timestamp's UTC offset is dropped, not applied.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# A UTC offset (or Z) right after a time of day: "...00:00:00+01:00", "...T23:30Z", "... 00:00 +0900".
# Only after a time, so a date such as 04-01-2021 keeps its "-2021".
UTC_OFFSET = re.compile(r"(\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*(?:Z|[+-]\d\d(?::?\d\d)?)$")


def strip_utc_offset(text: str) -> str:
    """``text`` without a trailing UTC offset after its time of day (the local wall time)."""
    return UTC_OFFSET.sub(r"\1", text)


# Unix time as APIs write it (exchanges, crypto feeds, JavaScript): seconds, milliseconds,
# microseconds or nanoseconds since 1970, the unit read off the numbers' size. Each unit starts
# where the one before would pass the year 5000; below 1e8 s (1973) a number is not taken for
# Unix time, so 20210104 stays a YYYYMMDD date.
UNIX_UNITS = (("ns", 1e17), ("us", 1e14), ("ms", 1e11), ("s", 1e8))


def unix_time_unit(numbers: np.ndarray) -> str | None:
    """The Unix time unit of ``numbers`` (float64; NaN ignored) from their median size, or None
    when they are too small to be Unix time."""
    import numpy as np

    finite = np.abs(numbers[np.isfinite(numbers)])
    if finite.size == 0:
        return None
    typical = float(np.median(finite))
    return next((unit for unit, smallest in UNIX_UNITS if typical >= smallest), None)


def from_unix_time(values: pd.Series) -> pd.Series | None:
    """A numeric column of Unix time as datetimes (UTC; what does not convert is NaT), or None
    when ``values`` are not numbers or too small to be Unix time (:func:`unix_time_unit`)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    unit = unix_time_unit(values.to_numpy("float64", na_value=np.nan))
    return pd.to_datetime(values, unit=unit, errors="coerce") if unit else None


__all__ = ["UNIX_UNITS", "UTC_OFFSET", "from_unix_time", "strip_utc_offset", "unix_time_unit"]
