"""How far apart a series' prices are: business days, calendar days, weeks or months.

One concept, one home. Validate detects the frequency from the dates (or checks the one a user
names), clean measures gaps in its periods, features picks calendar features that mean something
at it, train records it with the model (``metadata.json``), the report shows it, and the server
refuses raw prices spaced at another one.

Detection looks at each series on its own: the median number of calendar days between
consecutive dates (1 for daily closes, 7 for weekly, 28 to 31 for monthly) and, for daily
spacing, whether weekends occur (calendar days, e.g. crypto) or not (business days).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pricecast import grouped
from pricecast.errors import ConfigError

if TYPE_CHECKING:  # pandas loads where a frequency is detected, not wherever one is named
    import pandas as pd

AUTO = "auto"
# A daily series with at least this share of Saturdays and Sundays trades every calendar day
# (2/7 = 29 % when complete); a business-day series has none, give or take a stray date.
WEEKEND_SHARE_OF_CALENDAR_DAYS = 0.1


class Frequency(enum.StrEnum):
    """The supported spacings; the value is the name users type (``--frequency weekly``)."""

    BUSINESS = "business"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclasses.dataclass(frozen=True)
class Spacing:
    """What a frequency means in numbers."""

    alias: str  # the pandas offset alias (pd.date_range(freq=...)) of a regular series
    periods_per_year: int
    business_days: int  # business days in one period: turns max_gap_days into periods
    period: str  # one period, in words
    median_days: tuple[float, float]  # median calendar days between dates that detection accepts
    calendar_features: tuple[str, ...]  # which calendar features carry information at this spacing


SPACINGS: dict[Frequency, Spacing] = {
    Frequency.BUSINESS: Spacing("B", 252, 1, "business day", (0.5, 1.5), ("dow", "month")),
    Frequency.DAILY: Spacing("D", 365, 1, "day", (0.5, 1.5), ("dow", "month")),
    # Weekly and monthly closes fall on the same weekday or day of month: the weekday is noise.
    Frequency.WEEKLY: Spacing("W", 52, 5, "week", (5.0, 9.0), ("month",)),
    Frequency.MONTHLY: Spacing("MS", 12, 21, "month", (26.0, 35.0), ("month",)),
}
CHOICES: tuple[str, ...] = (AUTO, *(f.value for f in Frequency))


def parse(value: str | Frequency | None) -> Frequency | None:
    """A frequency from its name; None for ``auto`` (or empty): detect it from the dates.

    Raises:
        ConfigError: An unknown name.
    """
    if value is None or isinstance(value, Frequency):
        return value
    name = str(value).strip().lower()
    if name in ("", AUTO):
        return None
    try:
        return Frequency(name)
    except ValueError:
        raise ConfigError(f"Unknown frequency {value!r}.", f"Use one of: {', '.join(CHOICES)}.") from None


def spacing(frequency: Frequency | str) -> Spacing:
    return SPACINGS[Frequency(frequency)]


def steps(frequency: Frequency | str, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Periods of ``frequency`` from each date in ``before`` to the date in ``after`` (int64).

    Business days count with numpy's busday rules (a Friday to a Monday is 1); weeks are days / 7
    rounded, so a Thursday close after a Friday holiday is still one week on; months count
    calendar months (Jan 31 to Feb 1 is 1).
    """
    first = np.asarray(before, dtype="datetime64[D]")
    second = np.asarray(after, dtype="datetime64[D]")
    frequency = Frequency(frequency)
    if frequency is Frequency.BUSINESS:
        return np.busday_count(first, second).astype(np.int64)
    days = (second - first).astype(np.int64)
    if frequency is Frequency.DAILY:
        return days
    if frequency is Frequency.WEEKLY:
        return np.rint(days / 7).astype(np.int64)
    return (second.astype("datetime64[M]") - first.astype("datetime64[M]")).astype(np.int64)


def same_step(first: Frequency | str, second: Frequency | str) -> bool:
    """Whether one period of each is the same length: business and calendar days are both a day."""
    return spacing(first).business_days == spacing(second).business_days


def max_gap_periods(frequency: Frequency | str, max_gap_days: int) -> int:
    """``max_gap_days`` (business days) in whole periods of ``frequency``, at least one.

    5 business days tolerate a missing week of daily closes (holidays); at weekly or monthly
    spacing they round down to one period, so a missing week or month starts a new segment.
    """
    return max(1, int(max_gap_days) // spacing(frequency).business_days)


# --------------------------------------------------------------------------- detection
@dataclasses.dataclass(frozen=True)
class Detection:
    """Each series' spacing, and the one frequency of the data when they agree."""

    series: pd.DataFrame  # per ticker: dates, median_days, weekend_share, frequency (None = no answer)
    frequency: Frequency | None  # the frequency every classified series has; None if none or mixed

    @property
    def mixed(self) -> dict[str, list[str]]:
        """Tickers per frequency, when classified series disagree ({} when they agree)."""
        known = self.series.dropna(subset=["frequency"])
        groups = {str(f): sorted(map(str, g.index)) for f, g in known.groupby("frequency")}
        return groups if len(groups) > 1 else {}

    @property
    def unclassified(self) -> pd.DataFrame:
        """Series with two or more dates whose spacing is none of the supported ones."""
        return self.series[self.series["frequency"].isna() & (self.series["dates"] >= 2)]


def classify(median_days: float, weekend_share: float) -> Frequency | None:
    """The frequency of one series from its median spacing in days and its share of weekend dates."""
    if not np.isfinite(median_days):
        return None
    for frequency, (low, high) in ((f, s.median_days) for f, s in SPACINGS.items()):
        if low <= median_days <= high:
            if frequency is Frequency.BUSINESS and weekend_share >= WEEKEND_SHARE_OF_CALENDAR_DAYS:
                return Frequency.DAILY
            return frequency
    return None


def detect(tickers: Sequence[str] | pd.Series | np.ndarray, dates: pd.Series | np.ndarray) -> Detection:
    """Detect every series' frequency (any row order; one row per ticker and date).

    Args:
        tickers: The ticker of each row.
        dates: The date of each row (datetime64 or anything ``numpy`` turns into days).

    Returns:
        A :class:`Detection`; its ``frequency`` is None when no series has a supported spacing
        or when series disagree (see ``mixed``).
    """
    codes, names, day = sorted_series(tickers, dates)
    return detect_sorted(codes, names, day)


def sorted_series(tickers: Sequence[str] | pd.Series | np.ndarray,
                  dates: pd.Series | np.ndarray) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Rows ordered by (ticker, date): ticker codes (into the sorted names) and days."""
    import pandas as pd

    codes, names = pd.factorize(pd.Series(tickers), sort=True)
    day = np.asarray(dates, dtype="datetime64[D]")
    order = np.lexsort((day, codes))
    return codes[order], pd.Index(names), day[order]


def detect_sorted(codes: np.ndarray, names: pd.Index, day: np.ndarray) -> Detection:
    """:func:`detect` on rows already ordered by :func:`sorted_series` (validate sorts once)."""
    import pandas as pd

    number = np.asarray(day, dtype="datetime64[D]").view(np.int64)
    n = len(names)
    gaps = np.diff(number)
    spacing = codes[1:].astype(np.int64)  # each gap's ticker; n: no spacing (ticker change, repeated date)
    no_spacing = (codes[1:] != codes[:-1]) | (gaps <= 0)
    spacing[no_spacing] = n
    gaps[no_spacing] = 0
    del no_spacing
    median = grouped.group_median(gaps, spacing, n + 1, overwrite_groups=True)[:n]
    del gaps, spacing
    weekday = number + 3  # 1970-01-01 was a Thursday; Monday = 0
    weekday %= 7
    counts = np.bincount(codes, minlength=n)
    weekend = np.bincount(codes[weekday >= 5], minlength=n) / np.maximum(counts, 1)
    del weekday
    kinds = [classify(m, w) for m, w in zip(median, weekend, strict=True)]
    series = pd.DataFrame({"dates": counts, "median_days": median, "weekend_share": weekend,
                           "frequency": np.array(kinds, dtype=object)}, index=pd.Index(names, name="ticker"))
    found = {k for k in kinds if k is not None}
    return Detection(series, found.pop() if len(found) == 1 else None)


def problem(detection: Detection, requested: Frequency | None = None) -> str | None:
    """Why the data has no one supported frequency (or not the ``requested`` one); None when fine."""
    mixed = detection.mixed
    if requested is not None:
        known = detection.series.dropna(subset=["frequency"])
        other = known[known["frequency"] != requested]
        if other.empty:
            return None
        found = "; ".join(f"{_few(list(g.index))} {'is' if len(g) == 1 else 'are'} {f}"
                          for f, g in other.groupby("frequency"))
        return f"frequency {requested.value} was asked for, but {found}"
    if mixed:
        return "the tickers have different frequencies: " + "; ".join(f"{f}: {_few(t)}" for f, t in mixed.items())
    if detection.frequency is None:
        odd = detection.unclassified
        if odd.empty:
            return "no ticker has two dates, so the spacing of the prices is unknown"
        median = float(odd["median_days"].median())
        return (f"the dates are {median:g} days apart (median over {len(odd)} ticker(s), e.g. {_few(list(odd.index))}),"
                " which is none of the supported frequencies")
    return None


def fix(detection: Detection, requested: Frequency | None = None) -> str:
    """What to do about :func:`problem`."""
    if requested is not None and detection.frequency not in (None, requested) and not detection.mixed:
        return (f"Pass --frequency {detection.frequency.value} (frequency: in a config), what the dates are, "
                "or auto to detect it.")
    if detection.mixed:
        return "Run each frequency separately (one file per frequency), or resample the series to one frequency."
    return (f"Supply prices at one of the supported frequencies ({', '.join(f.value for f in Frequency)}), "
            "or name the frequency with --frequency (frequency: in a config) when detection cannot tell.")


def resolve(value: str | Frequency | None, tickers: Sequence[str] | pd.Series | np.ndarray,
            dates: pd.Series | np.ndarray) -> Frequency:
    """The named frequency, or the detected one for ``auto``.

    Raises:
        ConfigError: An unknown name, or ``auto`` on data without one supported frequency.
    """
    chosen = parse(value)
    if chosen is not None:
        return chosen
    detection = detect(tickers, dates)
    why = problem(detection)
    if why is not None or detection.frequency is None:
        raise ConfigError(f"The frequency of the prices cannot be detected: {why}.", fix(detection))
    return detection.frequency


def _few(names: Sequence[object], shown: int = 5) -> str:
    names = [str(n) for n in names]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def describe(frequency: Frequency | str) -> str:
    """``monthly (one price a month)``: the frequency as the report and errors name it."""
    return f"{Frequency(frequency).value} (one price a {spacing(frequency).period})"


__all__ = ["AUTO", "CHOICES", "SPACINGS", "Detection", "Frequency", "Spacing", "classify", "describe", "detect",
           "detect_sorted", "fix", "max_gap_periods", "sorted_series", "same_step", "parse", "problem", "resolve", "spacing", "steps"]
