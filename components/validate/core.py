"""Validate: parse the raw prices and check them against a declared pandera schema.

``validate_frame`` parses dates (``date_format`` or ISO/inferred), tickers and prices with
vectorized code, then runs :func:`price_schema` lazily so every failing check is reported at
once. A failure raises :class:`SchemaValidationError` carrying a *schema diff* (see
:mod:`components.validate.diff`): expected vs found columns and dtypes, and up to 10 failing rows
per check with their row numbers. Exact duplicate rows and unsorted input pass with a warning:
clean drops and sorts them.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np
import pandas as pd
import pandera.pandas as pa

from components.validate import diff as schema_diff
from components.validate.diff import (
    FREQUENCY,
    HISTORY,
    MIN_ROWS,
    PRICE_FINITE,
    PRICE_NUMBER,
    PRICE_POSITIVE,
    PRICE_RANGE,
    TICKER_NOT_EMPTY,
    TIME_SERIES,
    UNIQUE,
    Failure,
)
from pricecast import frequency as freq
from pricecast import grouped, history, shard_profile
from pricecast.errors import SchemaValidationError
from pricecast.local_day import UTC_OFFSET, from_unix_time
from pricecast.time_split import check_split_parameters

log = logging.getLogger("components.validate")

# Prices the pipeline computes with safely: price-space metrics square errors and sum windows of
# prices, which overflow (or vanish) beyond these. The model uses returns: rescaling loses nothing.
MIN_PRICE, MAX_PRICE = 1e-300, 1e300


# --------------------------------------------------------------------------- duplicates
@dataclasses.dataclass(frozen=True)
class DuplicateAnalysis:
    conflicting: np.ndarray  # rows whose (ticker, date) has another row with a different price
    exact_extra: int  # rows repeating an earlier row exactly (clean drops them)
    is_sorted: bool  # already sorted by (ticker, date)
    # The (ticker, date) order found on the way, kept for the series checks: sorting a shard and
    # factorizing its tickers a second time cost validate ~0.15 s and ~30 B a row per million rows.
    codes: np.ndarray  # each row's ticker code into ``names`` (-1: no ticker)
    names: pd.Index  # the distinct tickers, sorted
    day: np.ndarray  # each row's date, datetime64[D]
    order: np.ndarray | slice  # row positions in (ticker, date) order; a slice when already sorted

    def sorted_series(self) -> tuple[np.ndarray, pd.Index, np.ndarray]:
        """:func:`pricecast.frequency.sorted_series` of the same rows (every row has a ticker and a date)."""
        return self.codes[self.order], self.names, self.day[self.order]


def analyse_duplicates(frame: pd.DataFrame) -> DuplicateAnalysis:
    """Find duplicate (ticker, date) keys with a sort, not a hash table (5 M rows in ~0.3 s).

    Each row gets one int64 key (ticker code in sorted order, then day number), so sortedness is
    one comparison and duplicates are equal neighbours once sorted.
    """
    n = len(frame)
    codes, names = pd.factorize(frame["ticker"], sort=True)
    dates = frame["date"].to_numpy("datetime64[ns]")
    day = dates.astype("datetime64[D]")
    complete = ~np.isnat(dates) & (codes >= 0)  # rows without a date or ticker have no key
    key = np.where(complete, day.view(np.int64) + (1 << 20), 0)  # datetime64[ns] spans +-2^17 days
    key += codes.astype(np.int64) * (1 << 21)
    is_sorted = bool(np.all(key[1:] >= key[:-1]))
    order: np.ndarray | slice = slice(None) if is_sorted else np.argsort(key, kind="stable")
    ordered, keyed = key[order], complete[order]
    same = np.zeros(n, dtype=bool)
    same[1:] = (ordered[1:] == ordered[:-1]) & keyed[1:] & keyed[:-1]
    conflicting = np.zeros(n, dtype=bool)
    found = dict(codes=codes, names=pd.Index(names), day=day, order=order)
    if not same.any():
        return DuplicateAnalysis(conflicting, 0, is_sorted, **found)
    in_group = same.copy()
    in_group[:-1] |= same[1:]
    rows = np.flatnonzero(in_group) if is_sorted else order[in_group]  # usually none: this part is cheap
    group = pd.DataFrame({"key": key[rows], "price": frame["price"].to_numpy()[rows]})
    conflicting[rows] = group.groupby("key")["price"].transform("nunique").to_numpy() > 1
    exact_extra = int((group.duplicated(["key", "price"]).to_numpy() & ~conflicting[rows]).sum())
    return DuplicateAnalysis(conflicting, exact_extra, is_sorted, **found)


# --------------------------------------------------------------------------- the schema
def price_schema(min_rows: int = 100, duplicates: DuplicateAnalysis | None = None,
                 check_rows: bool = True, strict: bool | str = "filter") -> pa.DataFrameSchema:
    """The declared contract of validated prices (columns, dtypes, values, keys, size).

    ``duplicates``, when given, is the analysis of the very frame being validated, so the
    (ticker, date) check does not sort 5 M rows a second time. ``check_rows`` False leaves out
    the row count: one shard of several may hold few rows, or none (plan counts them all).
    ``strict`` True suits a frame already cut to the schema's columns (:func:`parse_frame`'s),
    which pandera can then validate in place instead of copying it.
    """

    def no_conflicting_duplicates(frame: pd.DataFrame) -> pd.Series:
        found = duplicates
        if found is None or found.conflicting.size != len(frame):
            found = analyse_duplicates(frame)
        return pd.Series(~found.conflicting, index=frame.index)

    return pa.DataFrameSchema(
        columns={
            "date": pa.Column("datetime64[ns]", nullable=False, description="Trading day, tz-naive midnight."),
            "ticker": pa.Column(str, nullable=False, checks=pa.Check.str_length(min_value=1, error=TICKER_NOT_EMPTY)),
            "price": pa.Column("float64", nullable=False, checks=[
                pa.Check.gt(0, error=PRICE_POSITIVE),
                pa.Check(np.isfinite, error=PRICE_FINITE),
                # Judges only positive finite prices: the two checks above report the others.
                pa.Check(lambda p: ~(np.isfinite(p) & (p > 0)) | ((p >= MIN_PRICE) & (p <= MAX_PRICE)),
                         error=PRICE_RANGE),
            ], description="Close price."),
        },
        checks=[
            pa.Check(no_conflicting_duplicates, error=UNIQUE),
            *([pa.Check(lambda frame: len(frame) >= max(min_rows, 1), error=MIN_ROWS)] if check_rows else []),
        ],
        strict=strict,  # "filter": extra source columns are reported, then dropped
        name="prices",
    )


# --------------------------------------------------------------------------- parsing
def _parse_dates(raw: pd.Series, date_format: str) -> pd.Series:
    """Dates at day precision, tz-naive: a timestamp's own local day (its offset or time zone
    dropped, not applied); what does not parse becomes NaT."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        raw = raw.dt.tz_localize(None)  # the wall time where it was stamped (pricecast.local_day)
    unix_time = None if date_format else from_unix_time(raw)  # seconds (ms, ...) since 1970, as APIs write dates
    if pd.api.types.is_datetime64_dtype(raw):
        values = raw.to_numpy("datetime64[ns]")
    elif unix_time is not None:  # its UTC day
        values = unix_time.to_numpy("datetime64[ns]")
    else:
        text = raw if pd.api.types.is_string_dtype(raw) else raw.astype("str")
        # Prices repeat a few thousand dates per ticker: parse each distinct string once.
        codes, uniques = pd.factorize(text)
        parsed = _parse_date_strings(pd.Index(uniques, dtype="str").str.strip(), date_format)
        values = np.append(parsed.to_numpy("datetime64[ns]"), np.datetime64("NaT", "ns"))[codes]
    if not (values.view(np.int64) % (86_400 * 10**9) == 0).all():
        values = values.astype("datetime64[D]").astype("datetime64[ns]")
    return pd.Series(values, index=raw.index, name="date")


def _parse_date_strings(values: pd.Index, date_format: str) -> pd.DatetimeIndex:
    # The day where a timestamp was stamped (pricecast.local_day): its UTC offset is dropped.
    values = values.str.replace(UTC_OFFSET, r"\1", regex=True)
    date_format = date_format.replace("%z", "").strip()

    def parse(fmt: str | None) -> pd.DatetimeIndex:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format": we report instead
            return pd.to_datetime(values, format=fmt, errors="coerce", utc=True).tz_convert(None)

    if date_format:
        return parse(date_format)
    iso = parse("ISO8601")
    if iso.isna().sum() > values.isna().sum():  # not all ISO: let pandas infer one format
        inferred = parse(None)
        if inferred.isna().sum() < iso.isna().sum():
            return inferred
    return iso


def _parse_prices(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw):
        return pd.Series(np.nan, index=raw.index, name="price")
    if pd.api.types.is_numeric_dtype(raw):
        return raw.astype("float64")
    return pd.to_numeric(raw, errors="coerce").astype("float64")


def _parse_tickers(raw: pd.Series) -> pd.Series:
    text = raw if pd.api.types.is_string_dtype(raw) and raw.dtype != object else raw.astype("str")
    return text.str.strip()


def parse_frame(raw: pd.DataFrame, date_format: str = "") -> tuple[pd.DataFrame, list[Failure]]:
    """Typed date/ticker/price columns plus a failure per column whose values do not parse."""
    parsed = pd.DataFrame({
        "date": _parse_dates(raw["date"], date_format),
        "ticker": _parse_tickers(raw["ticker"]),
        "price": _parse_prices(raw["price"]),
    })
    failures = []
    for column, label in (("date", f"date parses with {date_format!r}" if date_format else
                           "date parses (ISO 8601 or one inferred format)"),
                          ("price", PRICE_NUMBER)):
        bad = raw[column].notna().to_numpy() & parsed[column].isna().to_numpy()
        if bad.any():
            failures.append(Failure(label, column, np.flatnonzero(bad)))
    return parsed, failures


# --------------------------------------------------------------------------- validation
def _schema_failures(errors: pa.errors.SchemaErrors, unparsed: dict[str, np.ndarray]) -> list[Failure]:
    """pandera's failure cases grouped by check. A null that came from an unparseable value is
    already reported as a parse failure, so it is not counted again as a missing value."""
    cases = errors.failure_cases
    grouped: dict[tuple[str, str], list[np.ndarray]] = {}
    for (column, check), group in cases.groupby([cases["column"].fillna(""), cases["check"]], sort=False):
        rows = pd.to_numeric(group["index"], errors="coerce").dropna().to_numpy(np.int64)
        label = str(check)
        if label == "not_nullable":
            rows = rows[~np.isin(rows, unparsed.get(column, np.empty(0, np.int64)))]
            if rows.size == 0:
                continue
            label = schema_diff.NOT_NULL
        scope = "" if label in schema_diff.FRAME_CHECKS else column  # frame checks list every column per row
        grouped.setdefault((label, scope), []).append(rows)
    return [Failure(label, scope, np.unique(np.concatenate(parts))) for (label, scope), parts in grouped.items()]


# --------------------------------------------------------------------------- what later stages need
def series_failures(frame: pd.DataFrame, requested: freq.Frequency | None, test_fraction: float,
                    n_windows: int) -> tuple[list[Failure], freq.Frequency | None]:
    """Checks of a schema-valid frame against what clean, features and train will need.

    Each ticker must be a series over time (not a one-date cross-section), the series must share
    one supported frequency (``requested``, or the detected one), and the longest must be long
    enough for the features' windows plus the time split's test windows, counted in periods.

    Returns:
        The failures (each with its numbers in the summary) and the data's frequency (None when
        it is unknown or mixed).
    """
    codes, _, day = ordered = freq.sorted_series(frame["ticker"], frame["date"])  # sorted once for every check
    detection = freq.detect_sorted(*ordered)
    return _series_failures(frame, codes, day, detection, requested, test_fraction, n_windows)


def _series_failures(frame: pd.DataFrame, codes: np.ndarray, day: np.ndarray, detection: freq.Detection,
                     requested: freq.Frequency | None, test_fraction: float,
                     n_windows: int) -> tuple[list[Failure], freq.Frequency | None]:
    counts = detection.series["dates"]
    if counts.max() < 2:
        return [Failure(TIME_SERIES, "", np.empty(0, np.int64),
                        summary=shard_profile.cross_section_summary(len(counts), pd.unique(frame["date"])),
                        fix=shard_profile.cross_section_fix(test_fraction, n_windows))], None
    why = freq.problem(detection, requested)
    if why is not None or (requested is None and detection.frequency is None):
        return [Failure(FREQUENCY, "date", np.empty(0, np.int64), summary=why or "no supported frequency",
                        fix=freq.fix(detection, requested))], None
    frequency = requested or detection.frequency
    assert frequency is not None
    return _history_failures(codes, day, detection, frequency, test_fraction, n_windows), frequency


def _shard_series_failures(detection: freq.Detection,
                           requested: freq.Frequency | None) -> tuple[list[Failure], freq.Frequency | None]:
    """What one shard of several can be refused for on its own: tickers at another frequency than
    the requested one, or at different frequencies. Whether any ticker is a series, has a
    frequency or has the history is a question about every shard: plan asks it."""
    why = freq.problem(detection, requested) if requested is not None or detection.mixed else None
    if why is not None:
        return [Failure(FREQUENCY, "date", np.empty(0, np.int64), summary=why,
                        fix=freq.fix(detection, requested))], None
    return [], requested or detection.frequency


def _history_failures(codes: np.ndarray, day: np.ndarray, detection: freq.Detection, frequency: freq.Frequency,
                      test_fraction: float, n_windows: int) -> list[Failure]:
    """A failure when the data is too short for the model at ``frequency`` (before gaps).

    The plan stage splits the distinct dates of all tickers (:mod:`pricecast.time_split`);
    :func:`pricecast.history.model_fits` says whether that split can end in a verdict, and a
    ticker must have the history for a training row before the test period. ``codes`` and ``day``
    are the rows in (ticker, date) order (:func:`pricecast.frequency.sorted_series`).
    """
    fix = shard_profile.history_fix(frequency, test_fraction, n_windows)
    dates = grouped.distinct_days(day)
    if not history.model_fits(len(dates), test_fraction, n_windows):
        return [Failure(HISTORY, "", np.empty(0, np.int64), fix=fix, summary=shard_profile.too_few_dates_summary(
            frequency, len(dates), test_fraction, n_windows))]
    test_start = dates[len(dates) - history.test_dates(len(dates), test_fraction)]
    distinct = np.ones(len(day), dtype=bool)  # an exact duplicate row is no extra date of history
    distinct[1:] = (codes[1:] != codes[:-1]) | (day[1:] != day[:-1])
    before = np.bincount(codes[distinct & (day < test_start)], minlength=len(detection.series))
    if before.max() >= history.MIN_HISTORY + 1:
        return []
    return [Failure(HISTORY, "", np.empty(0, np.int64), fix=fix, summary=shard_profile.short_history_summary(
        frequency, test_start, int(before.max()), str(detection.series.index[int(before.argmax())])))]


def validate_frame(raw_df: pd.DataFrame, date_format: str = "", min_rows: int = 100, frequency: str = freq.AUTO,
                   test_fraction: float = 0.2, n_windows: int = 3) -> tuple[pd.DataFrame, dict]:
    """Parse and validate raw prices, and check they can feed the model.

    Args:
        raw_df: Frame from ingest: date, ticker, price (any raw types), maybe other columns.
        date_format: strptime format of string dates; empty tries ISO 8601, then one inferred format.
        min_rows: Fewest rows accepted (at least 1).
        frequency: ``auto`` (detect from the dates) or business, daily, weekly, monthly.
        test_fraction: The time split's held-out share of dates (train's parameter).
        n_windows: The time split's number of test windows (train's parameter).

    Returns:
        The validated frame (date datetime64[ns], ticker str, price float64; exact duplicates
        kept) and the schema diff (``diff["valid"]`` is True; ``diff["frequency"]`` is the data's).

    Raises:
        ConfigError: An unknown frequency, or split parameters out of range.
        SchemaValidationError: With ``diff`` when a column is missing or any check fails.
    """
    validated, report, _ = validate_shard(raw_df, date_format, min_rows, frequency, test_fraction, n_windows)
    return validated, report


def validate_shard(raw_df: pd.DataFrame, date_format: str = "", min_rows: int = 100, frequency: str = freq.AUTO,
                   test_fraction: float = 0.2, n_windows: int = 3, shard: int = 0,
                   shards: int = 1) -> tuple[pd.DataFrame, dict, shard_profile.Profile]:
    """:func:`validate_frame` on shard ``shard`` of ``shards``, and the shard's profile.

    One shard (``shards`` == 1) is the whole table: every check runs, as in
    :func:`validate_frame`. One of several is checked for what it can answer alone (columns,
    values, duplicates, a frequency that contradicts ``frequency`` or differs between its
    tickers); the row count, a series over time, a frequency at all and the history are
    properties of the whole table, which the plan stage checks on the pooled profiles. Such a
    shard may be empty (ingest keeps every part, with the schema).

    Returns:
        The validated frame, the schema diff (with ``shard`` and ``shards``) and the profile
        (:class:`pricecast.shard_profile.Profile`) plan pools.
    """
    requested = freq.parse(frequency)
    check_split_parameters(test_fraction, n_windows)
    whole_table = shards <= 1
    raw = raw_df.reset_index(drop=True)
    columns = schema_diff.column_diff(raw)
    if columns["missing"]:
        report = schema_diff.build(raw, columns, [], [], min_rows, date_format)
        raise _shard_error(report, shard, shards)

    parsed, failures = parse_frame(raw, date_format)
    unparsed = {f.column: f.rows for f in failures}
    analysis = analyse_duplicates(parsed)
    try:
        # In place: parsed is this function's own frame, and a copy was 5 M rows of fresh memory.
        schema = price_schema(min_rows, analysis, check_rows=whole_table, strict=True)
        validated = schema.validate(parsed, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        failures += _schema_failures(errors, unparsed)
        validated = None
    found = None
    profile = None
    if not failures:  # dates and prices are known good: check what the later stages need
        codes, _, day = ordered = analysis.sorted_series()  # the duplicate check sorted them already
        detection = freq.detect_sorted(*ordered)
        if whole_table:
            more, found = _series_failures(validated, codes, day, detection, requested, test_fraction, n_windows)
        else:
            more, found = _shard_series_failures(detection, requested)
        failures += more
        profile = shard_profile.Profile.of(codes, day, detection, found, shard, shards, rows=len(validated))
    if failures:
        report = schema_diff.build(raw, columns, failures, [], min_rows, date_format)
        raise _shard_error(report, shard, shards)
    assert profile is not None

    notes = []
    if analysis.exact_extra:
        notes.append(f"{analysis.exact_extra} exact duplicate row(s) (same ticker, date and price): "
                     "allowed; clean drops them.")
    if not analysis.is_sorted:
        notes.append("Rows are not sorted by (ticker, date): allowed; clean sorts them.")
    if columns["unexpected"]:
        notes.append(f"Columns not in the schema were dropped: {', '.join(columns['unexpected'])}.")
    for note in notes:
        log.warning(note)
    report = schema_diff.build(raw, columns, [], notes, min_rows, date_format, found.value if found else "")
    return validated.reset_index(drop=True), _scoped(report, shard, shards), profile


def _scoped(report: dict, shard: int, shards: int) -> dict:
    """The diff of one shard of several says so: its row count is not the table's."""
    if shards > 1:
        report.update(shard=int(shard), shards=int(shards), scope=(
            f"shard {shard} of {shards}: the row count, a series over time, one frequency and the history are "
            "checked across every shard by plan"))
    return report


def _shard_error(report: dict, shard: int, shards: int) -> SchemaValidationError:
    error = schema_diff.to_error(_scoped(report, shard, shards))
    if shards > 1:
        error = SchemaValidationError(f"Shard {shard} of {shards}: {error.problem}", error.fix, diff=error.diff)
    return error


__all__ = ["MAX_PRICE", "MIN_PRICE", "DuplicateAnalysis", "SchemaValidationError", "analyse_duplicates",
           "series_failures",
           "parse_frame", "price_schema", "validate_frame", "validate_shard"]
