"""Compressed sources: read as their content whatever the name, and every broken one's error and fix."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile

import pandas as pd
import pyarrow as pa
import pytest

from components.ingest.compression import compression_of, decompress
from components.ingest.core import ingest_frame, ingest_to, load_source_spec
from components.ingest.tests.support import ingest_file, parquet_bytes
from pricecast import frames
from pricecast.errors import DataFormatError

FRAME = pd.DataFrame({"date": ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-04"],
                      "ticker": ["007", "007", "007", "ÉTÉ"], "price": [10.0, 10.5, 11.25, 3.5]})
CSV = FRAME.to_csv(index=False).encode()


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()




@pytest.mark.parametrize(("name", "payload", "kind"), [
    ("prices.csv.gz", gzip.compress(CSV), "gzip"),
    ("prices.csv.bz2", bz2.compress(CSV), "bzip2"),
    ("prices.csv.xz", lzma.compress(CSV), "xz"),
    ("prices.csv.zst", _zstd(CSV), "zstd"),
    ("prices.zip", _zip({"export/prices.csv": CSV, "__MACOSX/export/._prices.csv": b"\0\5junk"}), "zip"),
    ("prices.zip", _zip({"prices.csv.gz": gzip.compress(CSV)}), "zip"),  # compressed inside the zip
    ("download", gzip.compress(CSV), "gzip"),  # no suffix at all: the bytes tell
    ("prices.parquet.gz", gzip.compress(parquet_bytes(FRAME)), "gzip"),
    ("prices.json.gz", gzip.compress(FRAME.to_json(orient="records").encode()), "gzip"),
    ("prices.zip", _zip({"prices.jsonl": FRAME.to_json(orient="records", lines=True).encode()}), "zip"),
])
def test_a_compressed_source_reads_as_the_plain_file(tmp_path, name, payload, kind) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_bytes(CSV)
    path = tmp_path / name
    path.write_bytes(payload)
    assert compression_of(payload) == kind
    ingested = ingest_frame(load_source_spec(None, source=str(path)))
    pd.testing.assert_frame_equal(ingested.frame, ingest_file(plain))
    assert ingested.info["compression"] == kind and ingested.info["bytes"] == len(payload)


def test_a_compressed_source_is_partitioned_like_the_plain_one(tmp_path) -> None:
    big = pd.concat([FRAME.assign(ticker=f"T{i:03d}") for i in range(40)], ignore_index=True)
    (tmp_path / "plain.csv").write_bytes(big.to_csv(index=False).encode())
    (tmp_path / "prices.csv.gz").write_bytes(gzip.compress(big.to_csv(index=False).encode()))
    for name in ("plain.csv", "prices.csv.gz"):
        ingest_to(load_source_spec(None, source=str(tmp_path / name)), tmp_path / f"{name}.parts", shards=3)
    for plain, compressed in zip(frames.shard_paths(tmp_path / "plain.csv.parts"),
                                 frames.shard_paths(tmp_path / "prices.csv.gz.parts"), strict=True):
        pd.testing.assert_frame_equal(frames.read_frame(compressed), frames.read_frame(plain))


def test_a_declared_format_reads_a_compressed_file_whatever_its_name(tmp_path) -> None:
    plain = tmp_path / "p.csv"
    plain.write_bytes(CSV)
    path = tmp_path / "prices.dat.gz"  # neither suffix names a format
    path.write_bytes(gzip.compress(CSV))
    pd.testing.assert_frame_equal(ingest_file(path, format="csv"), ingest_file(plain))


@pytest.mark.parametrize(("payload", "problem", "fix"), [
    (gzip.compress(CSV)[:-12], "gzip-compressed, but its data is cut short or corrupt", "gzip -t prices.csv.gz"),
    (gzip.compress(CSV)[:40] + b"\0" * 30, "cut short or corrupt", "Download or export it again"),
    (bz2.compress(CSV)[:-5], "bzip2-compressed, but its data is cut short", "bzip2 -t"),
    (lzma.compress(CSV)[:-5], "xz-compressed, but its data is cut short", "xz -t"),
    (_zstd(CSV)[:-3], "zstd-compressed, but its data is cut short", "zstd -t"),
    (gzip.compress(b""), "is empty (0 bytes of data)", "header and rows"),
    (gzip.compress(b"\n\n  \n"), "is empty", "header and rows"),
])
def test_a_broken_compressed_source_says_what_and_how_to_fix(tmp_path, payload, problem, fix) -> None:
    _assert_refused(tmp_path / "prices.csv.gz", payload, problem, fix)


def _assert_refused(path, payload: bytes, problem: str, fix: str) -> None:
    path.write_bytes(payload)
    with pytest.raises(DataFormatError) as err:
        ingest_file(path)
    assert problem in err.value.problem and fix in err.value.fix


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _encrypted(archive: bytes) -> bytes:
    """The archive with its one member marked encrypted (bit 0 of the flags), as a password zip's is."""
    data = bytearray(archive)
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 6] |= 1
    data[central + 8] |= 1
    return bytes(data)


def _corrupted_member(archive: bytes) -> bytes:
    """The archive with bytes in the middle of its member's compressed data overwritten."""
    data = bytearray(archive)
    start = 30 + len("prices.csv") + 8
    data[start:start + 16] = b"\xff" * 16
    return bytes(data)


@pytest.mark.parametrize(("payload", "problem", "fix"), [
    (_zip({"a.csv": CSV, "b.csv": CSV}), "holds 2 files (a.csv, b.csv); a source is one table",
     "unzip prices.zip FILE"),
    (_zip({}), "holds 0 files", "Zip one file"),
    (_zip({f"part-{i}.csv": CSV for i in range(7)}), "holds 7 files (part-0.csv, part-1.csv, part-2.csv, "
     "part-3.csv, part-4.csv, ...)", "extract the one you want"),
    (_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}), "is an Office document",
     "CSV UTF-8"),
    (_zip({"prices.csv": CSV * 50})[:120], "is cut short or corrupt (File is not a zip file)", "unzip -t prices.zip"),
    (_encrypted(_zip({"prices.csv": CSV})), "is password-protected", "unzip prices.zip"),
    (_corrupted_member(_zip({"prices.csv": CSV * 50})), "is cut short or corrupt", "unzip -t prices.zip"),
    (_tar_gz({"a.csv": CSV, "b.csv": CSV}), "is a tar archive (gzip-compressed)", "tar -xf prices.zip FILE"),
])
def test_an_archive_that_is_not_one_table_says_what_and_how_to_fix(tmp_path, payload, problem, fix) -> None:
    _assert_refused(tmp_path / "prices.zip", payload, problem, fix)


@pytest.mark.parametrize("kind", ["gzip", "zip"])
def test_content_past_the_cap_is_refused_before_it_fills_memory(kind) -> None:
    zeros = b"0" * 100_000
    payload = gzip.compress(zeros) if kind == "gzip" else _zip({"prices.csv": zeros})
    assert len(payload) < 1_000
    with pytest.raises(DataFormatError, match="more than 10,000 bytes") as err:
        decompress(payload, "bomb", limit=10_000)
    assert "Decompress it yourself" in err.value.fix or "Extract it" in err.value.fix
    assert decompress(payload, "bomb.csv.gz", limit=100_000).data == zeros  # at the cap: whole


def test_plain_data_passes_through_untouched() -> None:
    content = decompress(CSV, "https://example.com/prices.csv?x=1")
    assert content.data is CSV and content.compression is None
    assert decompress(gzip.compress(CSV), "https://example.com/prices.csv.gz?x=1").name == "/prices.csv"
