"""The split's dates are numpy datetime64[ns] whatever they were given as, and travel as ISO days."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from pricecast.errors import ConfigError
from pricecast.time_split import Split, Window, iso_day, time_split, window_mask


@pytest.mark.parametrize("given", [pd.Timestamp("2024-03-01"), "2024-03-01", datetime.date(2024, 3, 1),
                                   np.datetime64("2024-03-01", "D")])
def test_dates_of_any_kind_become_datetime64_ns(given) -> None:
    split = Split(given, given, (Window(given, given),), 0.2, 1)
    assert split.test_start.dtype == np.dtype("datetime64[ns]") and split.windows[0].end.dtype == split.test_start.dtype
    assert split.test_start == pd.Timestamp("2024-03-01") and iso_day(split.train_start) == "2024-03-01"


def test_a_split_round_trips_through_its_json_and_equals_the_one_of_its_frame() -> None:
    dates = pd.bdate_range("2023-01-02", periods=100)
    frame = pd.DataFrame({"date": np.repeat(dates, 2), "target": 0.0})
    split = time_split(frame, 0.2, 3)
    assert Split.from_dict(split.to_dict()) == split
    assert split.to_dict()["test_start"] == f"{dates[80]:%Y-%m-%d}"
    # The dates themselves, in any order, with repeats and a missing one, split the same.
    shuffled = np.r_[dates.to_numpy()[::-1], np.datetime64("NaT")]
    assert time_split(shuffled, 0.2, 3) == split
    assert window_mask(frame, split, 2).sum() == 2 * sum(1 for d in dates if split.windows[2].start <= d)


def test_too_few_dates_are_refused() -> None:
    with pytest.raises(ConfigError, match="cannot hold"):
        time_split(pd.bdate_range("2023-01-02", periods=3).to_numpy(), 0.2, 3)
