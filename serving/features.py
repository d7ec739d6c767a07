"""Raw recent prices -> feature rows, with the pipeline's own feature code (no skew).

The server never re-implements a feature: each raw instance goes through
:func:`features_from_prices`, which runs the clean stage's ``clean_prices`` and the features
stage's ``build_features`` (the functions those stages are built on), and the last row (the
latest date) is the one predicted from. The server is where the two stages' cores meet: a stage
never imports another. This module checks the request's shape first, so a malformed instance
gets a precise 422 instead of whatever the feature code would raise on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pricecast import frequency as freq
from pricecast.columns import FEATURE_COLUMNS, OUTLIER_BOUNDS_KEY
from pricecast.errors import ConfigError, PricecastError, SchemaValidationError
from pricecast.local_day import strip_utc_offset
from serving.errors import InvalidInputError

try:
    from components.clean.core import clean_prices
    from components.features import core as feature_core
except ImportError:  # pragma: no cover - the cores ship with pricecast; kept for partial installs
    feature_core, clean_prices = None, None

log = logging.getLogger("serving.features")

RAW_FIX = ('Send {"ticker": "ACME", "dates": ["2024-01-02", ...], "prices": [101.2, ...]}: '
           "closing prices oldest first, one ISO date per price.")
RAW_KEYS = frozenset({"ticker", "dates", "prices"})
MAX_HISTORY = 2000  # about eight years of closes: bounds the work one instance can ask for
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def min_history() -> int:
    return feature_core.MIN_HISTORY if feature_core is not None else 0


def supported(features: Sequence[str]) -> bool:
    """Whether raw prices can feed this model: the core exists and computes all its features."""
    return feature_core is not None and set(features) <= set(FEATURE_COLUMNS)


def _check_instance(i: int, instance: Any) -> tuple[str, list[Any], list[Any]]:
    if type(instance) is not dict or set(instance) != RAW_KEYS:
        keys = sorted(instance) if type(instance) is dict else type(instance).__name__
        raise InvalidInputError(f"instance {i} must have exactly the keys dates, prices, ticker (got {keys}).",
                                RAW_FIX)
    ticker, dates, prices = instance["ticker"], instance["dates"], instance["prices"]
    if type(ticker) is not str or not 0 < len(ticker) <= 64:
        raise InvalidInputError(f"instance {i}: ticker must be a string of 1 to 64 characters.", RAW_FIX)
    if type(dates) is not list or not all(type(d) is str and ISO_DATE.fullmatch(d) for d in dates):
        raise InvalidInputError(f"instance {i}: dates must be a list of ISO date strings.", RAW_FIX)
    if type(prices) is not list or not all(type(p) is float or type(p) is int for p in prices):
        raise InvalidInputError(f"instance {i}: prices must be a list of numbers.", RAW_FIX)
    if len(dates) != len(prices):
        raise InvalidInputError(f"instance {i}: {len(dates)} dates but {len(prices)} prices.", RAW_FIX)
    if not min_history() <= len(prices) <= MAX_HISTORY:
        raise InvalidInputError(f"instance {i}: {len(prices)} prices; send {min_history()} to {MAX_HISTORY}.",
                                RAW_FIX)
    return ticker, dates, prices


def features_from_prices(
    dates: Sequence[object] | pd.Series | np.ndarray,
    prices: Sequence[float] | pd.Series | np.ndarray,
    ticker: str = "SERIES",
    outlier_bounds: Mapping[str, Sequence[float] | None] | None = None,
    frequency: freq.Frequency | str = freq.Frequency.BUSINESS,
) -> pd.DataFrame:
    """One ticker's recent closes -> the clean stage's transform -> :func:`components.features.core.build_features`.

    This is the serving path: the model server calls it per request, so it runs exactly the code
    the pipeline ran on the training data (``clean_prices`` with its default gap and outlier
    rules, then the same features).

    Args:
        dates: Close dates, oldest first (anything :func:`pandas.to_datetime` reads).
        prices: Closing prices, one per date, all > 0.
        ticker: Name of the series: it picks the ticker's entry in ``outlier_bounds``.
        outlier_bounds: The training run's clipping bounds per ticker (the clean stage's
            artifact, stored with the model). With the ticker's entry, its returns are clipped
            exactly as in training; without it, the bounds are estimated from this window.
        frequency: The model's frequency: the dates must be spaced at it.

    Returns:
        The feature rows of the series; the last row is the latest date, the one to forecast from.

    Raises:
        ConfigError: Fewer than :data:`~components.features.core.MIN_HISTORY` prices, or a long gap leaves fewer than
            :data:`~components.features.core.MIN_HISTORY` consecutive prices before the last date.
        SchemaValidationError: Dates and prices differ in length, a date does not parse, dates
            are not strictly increasing, are spaced at another frequency than ``frequency``, or a
            price is not a finite positive number.
    """
    if len(prices) < feature_core.MIN_HISTORY:
        raise ConfigError(
            f"{len(prices)} prices were given; the features need at least MIN_HISTORY={feature_core.MIN_HISTORY} "
            "consecutive closes.",
            f"Send the last {feature_core.MIN_HISTORY} or more closing prices, oldest first.",
        )
    validated = _validated_series(dates, prices, ticker)
    _check_frequency(validated, freq.Frequency(frequency))
    clean, _ = clean_prices(validated, bounds=outlier_bounds, frequency=frequency)
    features = feature_core.build_features(clean, frequency)
    if features.empty or features["date"].iloc[-1] != validated["date"].iloc[-1]:
        raise ConfigError(
            f"A gap in the dates leaves fewer than MIN_HISTORY={feature_core.MIN_HISTORY} consecutive closes before "
            "the last date.",
            f"Send at least {feature_core.MIN_HISTORY} closes with no long gap before the date to forecast from.",
        )
    return features


def _check_frequency(series: pd.DataFrame, frequency: freq.Frequency) -> None:
    """The series' dates must be spaced at the model's frequency: a model of monthly returns
    fed daily closes would forecast a month from twenty days without any error. Business and
    calendar days both step one day: a short window cannot always tell them apart (a holiday-free
    stretch, a window shifted past a halt), and the clean rules of either fit the other."""
    detection = freq.detect(series["ticker"], series["date"])
    if detection.frequency is not None and freq.same_step(detection.frequency, frequency):
        return
    found = (f"{detection.frequency.value}" if detection.frequency is not None else
             f"{float(detection.series['median_days'].iloc[0]):g} days apart (median), no supported frequency")
    raise SchemaValidationError(
        f"The dates are {found}, but this model forecasts {freq.describe(frequency)}.",
        f"Send one close per {freq.spacing(frequency).period}, oldest first, as the model was trained on.",
    )


def _validated_series(dates: object, prices: object, ticker: str) -> pd.DataFrame:
    """What the validate stage guarantees, checked for one series coming from a request."""
    price = np.asarray(prices, dtype=np.float64)
    if len(dates) != len(price):  # type: ignore[arg-type]
        raise SchemaValidationError(
            f"{len(dates)} dates but {len(price)} prices were given.",  # type: ignore[arg-type]
            "Send one date per price.",
        )
    # The day where each close was stamped (pricecast.local_day): numpy would apply the offset.
    dates = [strip_utc_offset(d) if isinstance(d, str) else d for d in dates]  # type: ignore[attr-defined]
    try:  # numpy parses ISO strings, dates and timestamps far faster than pandas' general parser
        day = np.asarray(dates, dtype="datetime64[D]")
    except (ValueError, TypeError) as exc:
        raise SchemaValidationError(f"A date could not be read ({exc}).", "Send ISO dates (YYYY-MM-DD).") from exc
    if np.isnat(day).any():
        raise SchemaValidationError("A date is missing.", "Send one ISO date (YYYY-MM-DD) per price.")
    if not (np.isfinite(price).all() and (price > 0).all()):
        raise SchemaValidationError("Every price must be a finite number above zero.",
                                    "Remove or correct the non-positive or missing prices.")
    if not (np.diff(day) > np.timedelta64(0)).all():
        raise SchemaValidationError("Dates must be strictly increasing with no repeats.",
                                    "Send the closes oldest first, one per date.")
    return pd.DataFrame({"date": day.astype("datetime64[ns]"), "ticker": ticker, "price": price})


def outlier_bounds_from(metadata: Mapping[str, Any] | None, version: str) -> dict[str, Any] | None:
    """The training run's clipping bounds per ticker in a version's metadata; None (logged) without.

    A model trained before the bounds were stored still serves raw prices, with bounds
    estimated from each request's window (the rule the clean stage applies to what it sees).
    """
    document = (metadata or {}).get(OUTLIER_BOUNDS_KEY)
    tickers = document.get("tickers") if isinstance(document, dict) else None
    if not isinstance(tickers, dict):
        log.warning("Raw prices for %s get window-estimated outlier bounds: its metadata has none.", version)
        return None
    return tickers


def frequency_from(metadata: Mapping[str, Any] | None, version: str) -> freq.Frequency:
    """The frequency a version was trained at (its metadata's ``frequency``).

    Models trained before it was recorded are business-daily: that was the only spacing then.
    """
    try:
        found = freq.parse((metadata or {}).get("frequency"))
    except ConfigError:
        log.warning("Version %s records an unknown frequency %r; raw prices are checked as business days.",
                    version, (metadata or {}).get("frequency"))
        found = None
    return found or freq.Frequency.BUSINESS


def raw_rows(instances: list[Any], features: Sequence[str],
             outlier_bounds: Mapping[str, Sequence[float] | None] | None = None,
             frequency: freq.Frequency = freq.Frequency.BUSINESS) -> np.ndarray:
    """Feature rows (one per instance, in the model's feature order) from raw recent prices.

    ``outlier_bounds`` (from :func:`outlier_bounds_from`) makes a known ticker's returns clip
    exactly as in training; an unknown ticker's bounds are estimated from its window. The dates
    must be spaced at the model's ``frequency`` (:func:`frequency_from`); a 422 names both.

    Raises:
        InvalidInputError: a malformed instance, too little history, or a model whose features
            the feature core does not compute.
    """
    if not supported(features):
        raise InvalidInputError("This model's features are not computed from raw prices by this server.",
                                "Send feature rows instead (see GET /v1/models/{name}).")
    columns = list(features)
    rows = np.empty((len(instances), len(columns)), dtype=np.float64)
    for i, instance in enumerate(instances):
        ticker, dates, prices = _check_instance(i, instance)
        try:
            frame = features_from_prices(dates, prices, ticker, outlier_bounds, frequency)
        except PricecastError as exc:
            raise InvalidInputError(f"instance {i} ({ticker}): {exc.problem}", exc.fix or RAW_FIX) from None
        except (ValueError, TypeError, OverflowError) as exc:  # what pandas raises on odd dates
            raise InvalidInputError(f"instance {i} ({ticker}): the dates could not be read ({exc}).",
                                    RAW_FIX) from None
        rows[i] = frame[columns].to_numpy(dtype=np.float64)[-1]
    if not np.isfinite(rows).all():
        raise InvalidInputError("The prices give non-finite features (extreme values).", RAW_FIX)
    return rows
