"""s3:// sources against a real SeaweedFS (KFP's own object store), same code as local files."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
import pytest

from components.ingest import core
from components.ingest.core import ingest_frame, load_source_spec
from components.ingest.source_key import checkpoint_params
from pricecast import frames
from pricecast.errors import SourceError
from pricecast.settings import reload_settings
from tests.support.seaweed import SeaweedS3, seaweedfs

pytestmark = pytest.mark.s3

FRAME = pd.DataFrame({"date": ["2021-01-04", "2021-01-05"], "ticker": ["AAA", "AAA"], "price": [1.5, 1.75]})


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[SeaweedS3]:
    for key, value in seaweed.env("store").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PRICECAST_LOG_DIR", str(tmp_path / "logs"))
    reload_settings()
    try:
        yield seaweed
    finally:
        monkeypatch.undo()
        reload_settings()


def _put(s3: SeaweedS3, key: str, body: bytes) -> str:
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=body)
    return f"s3://{s3.bucket}/{key}"


def test_csv_and_parquet_objects_read_like_files(s3):
    buf = io.BytesIO()
    FRAME.to_parquet(buf, index=False)
    for key, body in (("in/prices.csv", FRAME.to_csv(index=False).encode()), ("in/prices.parquet", buf.getvalue())):
        result = ingest_frame(load_source_spec(None, source=_put(s3, key, body)))
        assert result.frame["price"].tolist() == [1.5, 1.75], key


def test_the_checkpoint_key_follows_the_object_version(s3):
    url = _put(s3, "in/versioned.csv", FRAME.to_csv(index=False).encode())
    before = checkpoint_params({"source": url})
    _put(s3, "in/versioned.csv", FRAME.assign(price=[2.0, 2.5]).to_csv(index=False).encode())
    after = checkpoint_params({"source": url})
    assert before["source_version"]["etag"] and before["source_version"] != after["source_version"]


def test_a_missing_object_is_a_source_error(s3):
    with pytest.raises(SourceError, match="does not exist"):
        ingest_frame(load_source_spec(None, source=f"s3://{s3.bucket}/in/nope.csv"))


def test_parquet_and_csv_objects_stream_into_shards_like_files(s3, tmp_path, monkeypatch):
    monkeypatch.setattr(core, "CSV_STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(core, "STREAM_BATCH_ROWS", 3)
    frame = pd.DataFrame({"date": ["2021-01-04", "2021-01-05"] * 4, "ticker": list("AABBCCDD"),
                          "price": [1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    for key, body in (("in/many.csv", frame.to_csv(index=False).encode()), ("in/many.parquet", buf.getvalue())):
        spec = load_source_spec(None, source=_put(s3, key, body))
        written = core.ingest_to(spec, tmp_path / key, 3)
        union = pd.concat(pd.read_parquet(p) for p in frames.shard_paths(tmp_path / key))
        assert written.info["streamed"] is True and written.rows == 8, key
        pd.testing.assert_frame_equal(union.sort_values(["ticker", "date"], ignore_index=True),
                                      ingest_frame(spec).frame)
