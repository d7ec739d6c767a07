"""Raw recent prices -> feature rows, with the pipeline's own feature code (no skew).

The server never re-implements a feature: each raw instance goes through
``components.features.core.features_from_prices``, the function the features stage is built on,
and the last row (the latest date) is the one predicted from. This module only checks the
request's shape first, so a malformed instance gets a precise 422 instead of whatever the
feature code would raise on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pricecast import frequency as freq
from pricecast.errors import ConfigError, PricecastError
from serving.errors import InvalidInputError

try:
    from components.clean.core import OUTLIER_BOUNDS_KEY
    from components.features import core as feature_core
except ImportError:  # pragma: no cover - the core ships with pricecast; kept for partial installs
    feature_core, OUTLIER_BOUNDS_KEY = None, "outlier_bounds"

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
    return feature_core is not None and set(features) <= set(feature_core.FEATURE_COLUMNS)


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
            frame = feature_core.features_from_prices(dates, prices, ticker, outlier_bounds, frequency)
        except PricecastError as exc:
            raise InvalidInputError(f"instance {i} ({ticker}): {exc.problem}", exc.fix or RAW_FIX) from None
        except (ValueError, TypeError, OverflowError) as exc:  # what pandas raises on odd dates
            raise InvalidInputError(f"instance {i} ({ticker}): the dates could not be read ({exc}).",
                                    RAW_FIX) from None
        rows[i] = frame[columns].to_numpy(dtype=np.float64)[-1]
    if not np.isfinite(rows).all():
        raise InvalidInputError("The prices give non-finite features (extreme values).", RAW_FIX)
    return rows
