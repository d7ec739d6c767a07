"""Bad input end to end: a clear error, a non-zero exit, and nothing good lost.

Each bad source runs the whole pipeline against a copy of a trained store, and every file that
existed before (checkpoints, models, registry.json) must hash the same after. The stage tests
(components/ingest, components/validate) cover the full bad-input list at the core; here one
case per failing stage and error class goes through kfp.local and the CLI.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.local_run import PipelineFailed, run_local
from pricecast.registry import RegistryStore

from .conftest import SMALL, tree_digest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


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
        "html_page": (b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>\n", ".csv", "HTML"),
        "truncated_gzip": (gzip.compress(_csv(good))[:-12], ".csv.gz", "cut short"),
    }


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    import io
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


PIPELINE_CASES = ("missing_column", "negative_price", "duplicate_ticker_date", "empty_file", "non_utf8",
                  "truncated_parquet", "html_page", "truncated_gzip")


def _closed_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", PIPELINE_CASES)
def test_bad_source_fails_clearly_and_keeps_everything(case, trained_copy, tmp_path):
    data, suffix, word = _bad_sources()[case]
    store = trained_copy
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

    _assert_nothing_good_changed(store, before, active, case)


def _assert_nothing_good_changed(store: Path, before: dict[str, str], active: str | None, case: str) -> None:
    # LATEST pointers included: `--from STAGE` must still resume from the last *good* data.
    after = tree_digest(store)
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert changed == [], f"{case} changed or removed good artifacts: {changed}"
    assert RegistryStore().load().active == active


def test_unreachable_source_fails_clearly_and_keeps_everything(trained_copy, tmp_path):
    store = trained_copy
    before, active = tree_digest(store), RegistryStore().load().active
    with pytest.raises(PipelineFailed) as info:
        run_local({**SMALL, "source": f"http://127.0.0.1:{_closed_port()}/prices.csv"}, pipeline_root=tmp_path / "kfp")
    assert info.value.exit_code == 3 and "4 tries" in info.value.problem, info.value.problem
    # The incident record is new; nothing that existed before changed.
    assert list((store / "incidents").glob("*-ingest.json"))
    _assert_nothing_good_changed(store, before, active, "unreachable")


def test_from_validate_after_a_bad_file_resumes_from_the_last_good_data(trained, trained_copy, isolated_store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_bad_sources()["negative_price"][0])
    with pytest.raises(PipelineFailed):
        run_local({**SMALL, "source": str(bad)}, pipeline_root=tmp_path / "kfp1")
    # ingest ran on the bad file and kept a checkpoint of it, but validate refused it, so the
    # pointer --from uses still names the trained run's data: this run rebuilds the same model.
    again = run_local({**SMALL, "source": str(bad), "force_from": "validate"}, pipeline_root=tmp_path / "kfp2")
    trained_info = RegistryStore().load().get(trained.outcome.version)
    assert RegistryStore().load().get(again.version).data_hash == trained_info.data_hash


def test_cli_run_exit_code_and_message_on_bad_source(trained_copy, tmp_path):
    store = trained_copy
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv(_good_frame().drop(columns=["price"])))
    env = {**os.environ, "PRICECAST_STORE_URL": f"file://{store}", "PRICECAST_LOG_DIR": str(tmp_path / "logs"),
           "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "cli", "run", "--source", str(bad), "--tickers", "4"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "what to do" in proc.stderr and "price" in proc.stderr


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_parameter_that_is_not_a_finite_number_is_refused_before_any_task(value, isolated_store, tmp_path):
    # KFP's protobuf JSON has no NaN or infinity: it used to fail with a serialization traceback.
    from pricecast.errors import ConfigError

    with pytest.raises(ConfigError, match=r"alpha=(nan|inf) are not finite") as info:
        run_local({**SMALL, "alpha": value}, pipeline_root=tmp_path / "kfp")
    assert "finite value" in info.value.fix
    assert not (tmp_path / "kfp").exists()  # no task ran, no output written
