"""The bad-input list, file to error, through the same code the pipeline runs (ingest + validate).

Each case must give the right error class, a problem that names what is wrong, and a fix.
Unsorted input is the one "bad" input that is accepted (clean sorts it).
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from components.ingest.core import ingest_frame, load_source_spec
from components.validate.core import validate_frame
from components.validate.tests.conftest import good_frame
from pricecast.errors import DataFormatError, PricecastError, SchemaValidationError


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _cases() -> dict[str, tuple[bytes, str, type[PricecastError], list[str]]]:
    good = good_frame()
    wrong_type = good.astype({"price": str})
    wrong_type.loc[4, "price"] = "12,50 EUR"
    bad_date = good.copy()
    bad_date.loc[2, "date"] = "31/02/2021"
    csv = _csv(good)
    return {  # name -> (file bytes, suffix, error class, words in the problem)
        "missing_column": (_csv(good.drop(columns=["price"])), ".csv", SchemaValidationError, ["missing", "price"]),
        "renamed_columns": (_csv(good.rename(columns={"price": "close"})), ".csv", SchemaValidationError,
                            ["missing", "price", "close"]),
        "wrong_dtype": (_csv(wrong_type), ".csv", SchemaValidationError, ["price is a number"]),
        "unparseable_date": (_csv(bad_date), ".csv", SchemaValidationError, ["date parses"]),
        "nan_price": (_csv(good.assign(price=good["price"].where(good.index != 9))), ".csv",
                      SchemaValidationError, ["price", "missing values"]),
        "negative_price": (_csv(good.assign(price=good["price"].where(good.index != 5, -3.0))), ".csv",
                           SchemaValidationError, ["price > 0"]),
        "zero_price": (_csv(good.assign(price=good["price"].where(good.index != 7, 0.0))), ".csv",
                       SchemaValidationError, ["price > 0"]),
        "duplicate_ticker_date": (_csv(pd.concat([good, good.iloc[[3]].assign(price=1.0)])), ".csv",
                                  SchemaValidationError, ["duplicate", "(ticker, date)"]),
        "empty_file": (b"", ".csv", DataFormatError, ["empty"]),
        "header_only": (b"date,ticker,price\n", ".csv", DataFormatError, ["header but no rows"]),
        "non_utf8": (csv.replace(b"AAA", b"A\xff\xfeA", 1), ".csv", DataFormatError, ["UTF-8", "offset"]),
        "truncated_csv": (csv[:-7], ".csv", DataFormatError, ["truncated"]),
        "truncated_parquet": (_parquet(good)[:-40], ".parquet", DataFormatError, ["truncated", "Parquet"]),
        "html_saved_as_csv": (b"<!doctype html><title>404</title>", ".csv", DataFormatError, ["HTML"]),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
def test_bad_input_gives_the_right_error_with_problem_and_fix(tmp_path, case):
    payload, suffix, error, words = _cases()[case]
    path = tmp_path / f"{case}{suffix}"
    path.write_bytes(payload)

    with pytest.raises(error) as info:
        spec = load_source_spec(None, source=str(path))
        validate_frame(ingest_frame(spec).frame, spec.date_format, min_rows=100)

    for word in words:
        assert word.lower() in info.value.problem.lower(), info.value.problem
    assert info.value.fix and info.value.exit_code in (3, 4)
    if isinstance(info.value, SchemaValidationError):
        assert info.value.diff["checks"], "a schema failure always carries a diff"


def test_unsorted_input_is_accepted_and_flagged(tmp_path):
    path = tmp_path / "shuffled.csv"
    path.write_bytes(_csv(good_frame(tickers=("AAA", "BBB")).sample(frac=1.0, random_state=3)))
    validated, diff = validate_frame(ingest_frame(load_source_spec(None, source=str(path))).frame)
    assert len(validated) == 300
    assert diff["valid"] and any("not sorted" in w for w in diff["warnings"])
