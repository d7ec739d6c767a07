"""Bad input end to end: a clear error, a non-zero exit, and nothing good lost.

One trained store is built once; each bad source then runs the whole pipeline against a copy,
and every file that existed before (checkpoints, models, registry.json) must hash the same after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.local_run import PipelineFailed, run_local
from pricecast.registry import RegistryStore
from pricecast.settings import reload_settings

from .conftest import SMALL, tree_digest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("trained")
    env = {"PRICECAST_STORE_URL": f"file://{base / 'store'}", "PRICECAST_LOG_DIR": str(base / "logs")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reload_settings()
    try:
        run_local(dict(SMALL), pipeline_root=base / "kfp")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        reload_settings()
    return base / "store"


def _good_frame() -> pd.DataFrame:
    dates = pd.bdate_range("2021-01-01", periods=150)
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "ticker": "AAA", "price": [100 + i * 0.1 for i in range(150)]})


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _bad_sources() -> dict[str, tuple[bytes, str, str]]:
    """name -> (file bytes, file suffix, the word the error must contain)."""
    good = _good_frame()
    neg = good.copy(); neg.loc[5, "price"] = -3.0
    zero = good.copy(); zero.loc[7, "price"] = 0.0
    nan = good.copy(); nan.loc[9, "price"] = None
    dup = pd.concat([good, good.iloc[[3]].assign(price=1.0)])
    wrong_type = good.astype({"price": str}); wrong_type.loc[4, "price"] = "abc"
    bad_date = good.copy(); bad_date.loc[2, "date"] = "31/02/2021"
    truncated = _csv(good)
    return {
        "missing_column": (_csv(good.drop(columns=["price"])), ".csv", "price"),
        "renamed_columns": (_csv(good.rename(columns={"price": "close", "date": "day"})), ".csv", "price"),
        "wrong_dtype": (_csv(wrong_type), ".csv", "price"),
        "unparseable_date": (_csv(bad_date), ".csv", "date"),
        "nan_price": (_csv(nan), ".csv", "price"),
        "negative_price": (_csv(neg), ".csv", "price"),
        "zero_price": (_csv(zero), ".csv", "price"),
        "duplicate_ticker_date": (_csv(dup), ".csv", "duplicate"),
        "empty_file": (b"", ".csv", "empty"),
        "header_only": (b"date,ticker,price\n", ".csv", "row"),
        "non_utf8": (_csv(good).replace(b"AAA", b"A\xff\xfeA", 1), ".csv", "UTF-8"),
        "truncated_csv": (truncated[: len(truncated) - 7], ".csv", "truncated"),
        "truncated_parquet": (_parquet_bytes(good)[:-40], ".parquet", "parquet"),
    }


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    import io
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(_bad_sources()))
def test_bad_source_fails_clearly_and_keeps_everything(case, trained_store, tmp_path, monkeypatch):
    data, suffix, word = _bad_sources()[case]
    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    monkeypatch.setenv("PRICECAST_STORE_URL", f"file://{store}")
    monkeypatch.setenv("PRICECAST_LOG_DIR", str(tmp_path / "logs"))
    reload_settings()
    before = tree_digest(store)
    active = RegistryStore().load().active
    source = tmp_path / f"bad{suffix}"
    source.write_bytes(data)

    with pytest.raises(PipelineFailed) as info:
        run_local({**SMALL, "source": str(source)}, pipeline_root=tmp_path / "kfp")
    err = info.value
    assert err.exit_code != 0
    assert word.lower() in err.problem.lower(), err.problem
    assert err.fix, "every error says what to do"

    after = tree_digest(store)
    changed = [p for p, h in before.items() if after.get(p) != h and not p.endswith("/LATEST")]
    assert changed == [], f"{case} changed or removed good artifacts: {changed}"
    assert RegistryStore().load().active == active
    reload_settings()


def test_unsorted_input_is_accepted_and_gives_the_same_data(isolated_store, tmp_path):
    """Unsorted rows are not an error: clean sorts them (logged), so the result matches sorted input."""
    good = pd.concat([_good_frame().assign(ticker=t, price=lambda d, k=k: d.price * k) for k, t in ((1, "AAA"), (2, "BBB"))])
    sorted_path, shuffled_path = tmp_path / "sorted.csv", tmp_path / "shuffled.csv"
    good.to_csv(sorted_path, index=False)
    good.sample(frac=1.0, random_state=1).to_csv(shuffled_path, index=False)
    a = run_local({**SMALL, "source": str(sorted_path), "min_rows": 50}, pipeline_root=tmp_path / "k1")
    b = run_local({**SMALL, "source": str(shuffled_path), "min_rows": 50}, pipeline_root=tmp_path / "k2")
    assert a.decision in {"promoted", "rejected"}
    assert RegistryStore().load().get(a.version).data_hash == RegistryStore().load().get(b.version).data_hash


def test_cli_run_exit_code_and_message_on_bad_source(trained_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv(_good_frame().drop(columns=["price"])))
    env = {**os.environ, "PRICECAST_STORE_URL": f"file://{store}", "PRICECAST_LOG_DIR": str(tmp_path / "logs"),
           "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "pricecast.cli", "run", "--source", str(bad), "--tickers", "4"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "what to do" in proc.stderr and "price" in proc.stderr
