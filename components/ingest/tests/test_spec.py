"""SourceSpec and its config files: YAML or TOML, same keys, flags win, typos are errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.ingest.core import SourceSpec, load_source_spec
from pricecast.errors import ConfigError


def test_defaults_are_the_documented_ones():
    spec = load_source_spec()
    assert spec.source == "generator" and spec.is_generator
    assert (spec.date_column, spec.ticker_column, spec.price_column) == ("date", "ticker", "price")
    assert (spec.tickers, spec.days, spec.seed, spec.ar_coef) == (20, 756, 42, 0.15)
    assert spec.default_ticker == "SERIES" and spec.encoding == "utf-8" and spec.format == "auto"


def test_yaml_config_and_overrides_that_win(tmp_path):
    config = tmp_path / "source.yaml"
    config.write_text("source: prices.csv\ndate-column: Date\nprice_column: Close\ndate_format: '%b %d %Y'\n")
    spec = load_source_spec(config, price_column="Adj Close", ticker_column=None)
    assert spec.source == "prices.csv" and spec.date_column == "Date"
    assert spec.price_column == "Adj Close"  # the flag wins
    assert spec.ticker_column == "ticker"  # None means "not given"
    assert spec.date_format == "%b %d %Y"


def test_toml_config_with_an_ingest_section_and_pipeline_keys(tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_text('[ingest]\nsource = "s3://bucket/p.parquet"\nsource_format = "parquet"\nmin_rows = 5\n')
    spec = load_source_spec(config)
    assert spec.source == "s3://bucket/p.parquet" and spec.format == "parquet"


def test_unknown_keys_and_bad_values_are_config_errors(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("sourse: x.csv\n")
    with pytest.raises(ConfigError) as info:
        load_source_spec(config)
    assert "sourse" in info.value.problem and "Valid keys" in info.value.fix

    with pytest.raises(ConfigError, match="ar_coef"):
        load_source_spec(ar_coef=1.5)
    with pytest.raises(ConfigError, match="start_date"):
        load_source_spec(start_date="not a date")
    with pytest.raises(ConfigError, match="format"):
        load_source_spec(format="xlsx")
    with pytest.raises(ConfigError, match="source"):
        load_source_spec(source="  ")


def test_missing_or_broken_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_source_spec(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.toml"
    broken.write_text("source = \n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_source_spec(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="key: value"):
        load_source_spec(listing)


def test_the_spec_is_immutable():
    with pytest.raises(ValidationError):
        SourceSpec().source = "x"  # type: ignore[misc]
