"""The benchmark floor (benchmarks/floor.py) does the pipeline's work: same features, split and fit.

The floor is written without the pipeline's code, so these tests are what ties the two: on the
same generated prices, its features equal ``build_features``'s to 1e-9, its train and test rows
are the split's, and its normal-equations Ridge equals scikit-learn's scaled Ridge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import floor
from components.features.core import build_features
from components.ingest.generator import generate_prices
from components.train.core import coefficients, make_model
from pricecast.columns import FEATURE_COLUMNS, TARGET
from pricecast.moments import RidgeFit
from pricecast.time_split import time_split, train_mask


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    raw = generate_prices(12, 260, "2021-03-01", seed=3, drift=0.06, volatility=0.3, ar_coef=0.1)
    path = tmp_path_factory.mktemp("floor") / "prices.parquet"
    # Shuffled on disk: the floor must sort.
    raw.sample(frac=1.0, random_state=0).to_parquet(path, index=False)
    return raw, path


@pytest.fixture(scope="module")
def both(prices: tuple[pd.DataFrame, Path]) -> tuple[pd.DataFrame, tuple, pd.DataFrame]:
    raw, path = prices
    days, dictionary, codes, price = floor.read_sorted(path)
    keep, target, x = floor.build(days, codes, price)
    clean = raw.assign(
        log_return=np.log(raw["price"]).groupby(raw["ticker"]).diff(),
        segment=0, clipped=False,
    )
    pipeline = build_features(clean)
    ours = pd.DataFrame({"date": days[keep].astype("datetime64[D]").astype("datetime64[ns]"),
                         "ticker": np.asarray(dictionary)[codes[keep]], TARGET: target,
                         **{name: x[:, j] for j, name in enumerate(floor.FEATURES)}})
    return pipeline, (days, codes, price, keep), ours


def test_the_floor_imports_nothing_of_the_pipeline() -> None:
    tree = ast.parse(Path(floor.__file__).read_text())
    imported = {n.name for node in ast.walk(tree) if isinstance(node, ast.Import) for n in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m.partition(".")[0] for m in imported} & {"pricecast", "components", "pipelines"}


def test_features_equal_the_pipeline_to_1e9(both) -> None:
    pipeline, _, ours = both
    assert len(ours) == len(pipeline) > 0
    assert (ours["ticker"].to_numpy() == pipeline["ticker"].to_numpy()).all()
    assert (ours["date"].to_numpy() == pipeline["date"].to_numpy()).all()
    assert floor.FEATURES == FEATURE_COLUMNS
    for name in (TARGET, *FEATURE_COLUMNS):
        np.testing.assert_allclose(ours[name], pipeline[name], rtol=0, atol=1e-9, equal_nan=True, err_msg=name)


def test_split_and_ridge_equal_the_pipeline(prices, both) -> None:
    pipeline, (days, codes, _, keep), ours = both
    # The pipeline splits the dates of the prices (clean, before features drop the first ones).
    split = time_split(prices[0], test_fraction=floor.TEST_FRACTION)
    first_test_day = floor.test_start(days)
    assert np.datetime64(first_test_day, "D") == np.datetime64(split.test_start, "D")
    train, test = floor.split_masks(days, codes, keep, ours[TARGET].to_numpy(), first_test_day)
    assert (train == train_mask(pipeline, split)).all()
    expected_test = (pipeline["date"] >= split.test_start) & pipeline[TARGET].notna()
    assert (test == expected_test.to_numpy()).all()

    x = ours[floor.FEATURES].to_numpy()
    sums = floor.RidgeSums(x.shape[1])
    y = ours[TARGET].to_numpy()
    for part in np.array_split(np.flatnonzero(train), 3):  # added in blocks, as the floor does
        sums.add(x[part], y[part])
    coef, intercept = sums.solve(alpha=1.0)
    model = make_model(1.0).fit(pipeline.loc[train, FEATURE_COLUMNS], pipeline.loc[train, TARGET].to_numpy())
    reference = coefficients(RidgeFit.from_pipeline(model))
    np.testing.assert_allclose(coef, [reference[c] for c in FEATURE_COLUMNS], rtol=1e-9)
    assert intercept == pytest.approx(reference["intercept"], rel=1e-9)


def test_run_writes_the_features_in_blocks_of_whole_tickers(prices, both, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(floor, "BLOCK", 1000)  # several blocks, cut where a ticker starts
    result = floor.run(prices[1], tmp_path)
    written = pd.read_parquet(tmp_path / "floor-features.parquet")
    pipeline = both[0]
    assert result["blocks"] > 1
    assert len(written) == result["feature_rows"] == len(pipeline)
    for name in (TARGET, *FEATURE_COLUMNS):
        np.testing.assert_allclose(written[name], pipeline[name], rtol=0, atol=1e-9, equal_nan=True, err_msg=name)
    assert 0 < result["test_mape"] < 10
    assert result["train_rows"] + result["test_rows"] < result["feature_rows"]
