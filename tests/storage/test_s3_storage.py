"""pricecast.storage against a real SeaweedFS: the same calls the stages make on a cluster."""

from __future__ import annotations

import hashlib
import threading

import pytest

from pricecast import storage
from pricecast.errors import ConcurrentUpdateError
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.s3


def test_bytes_and_text_round_trip_and_land_as_real_objects(store_url: str, seaweed: SeaweedS3) -> None:
    url = storage.join(store_url, "a", "b.bin")
    storage.write_bytes(url, b"\x00\x01payload")
    storage.write_text(storage.join(store_url, "a", "c.txt"), "héllo")

    assert storage.read_bytes(url) == b"\x00\x01payload"
    assert storage.read_text(storage.join(store_url, "a", "c.txt")) == "héllo"
    assert storage.exists(url) and not storage.exists(storage.join(store_url, "a", "missing"))
    assert storage.listdir(storage.join(store_url, "a")) == ["b.bin", "c.txt"]
    # Seen by an independent client, so it is really in the bucket, not in an fsspec cache.
    key = url.split(f"s3://{seaweed.bucket}/", 1)[1]
    assert seaweed.client().get_object(Bucket=seaweed.bucket, Key=key)["Body"].read() == b"\x00\x01payload"


def test_put_and_get_file_keep_every_byte(store_url: str, tmp_path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(bytes(range(256)) * 40_000)  # 10 MB: above s3fs's multipart threshold
    url = storage.join(store_url, "models", "v1", "model.bin")

    storage.put_file(src, url)
    back = storage.get_file(url, tmp_path / "out" / "model.bin")

    assert storage.sha256_file(back) == storage.sha256_file(src)
    assert not list((tmp_path / "out").glob(".*.tmp")), "the download's temp file was left behind"


def test_missing_object_is_file_not_found_and_remove_is_idempotent(store_url: str) -> None:
    url = storage.join(store_url, "x.json")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(url)
    storage.write_text(url, "{}")
    storage.remove(url)
    storage.remove(url)
    assert not storage.exists(url)
    assert storage.listdir(storage.join(store_url, "nothing-here")) == []


def test_readers_see_the_old_or_the_new_object_never_a_mix(store_url: str) -> None:
    url = storage.join(store_url, "big.bin")
    old, new = b"o" * 6_000_000, b"n" * 6_000_000
    allowed = {hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()}
    storage.write_bytes(url, old)
    seen: list[str] = []

    def read_many() -> None:
        for _ in range(12):
            seen.append(hashlib.sha256(storage.read_bytes(url)).hexdigest())

    reader = threading.Thread(target=read_many)
    reader.start()
    for payload in (new, old, new, old, new):
        storage.write_bytes(url, payload)
    reader.join(timeout=120)

    assert len(seen) == 12
    assert set(seen) <= allowed
    assert storage.read_bytes(url) == new


def test_compare_and_swap_creates_only_when_absent(store_url: str) -> None:
    url = storage.join(store_url, "doc.json")
    storage.compare_and_swap(url, b"first", None)
    with pytest.raises(ConcurrentUpdateError):
        storage.compare_and_swap(url, b"second", None)
    assert storage.read_bytes(url) == b"first"


def test_compare_and_swap_refuses_a_stale_token(store_url: str) -> None:
    url = storage.join(store_url, "doc.json")
    storage.compare_and_swap(url, b"v1", None)
    data, token_v1 = storage.read_versioned(url)
    assert data == b"v1" and token_v1

    storage.compare_and_swap(url, b"v2", token_v1)
    data, token_v2 = storage.read_versioned(url)
    assert data == b"v2" and token_v2 != token_v1

    with pytest.raises(ConcurrentUpdateError):
        storage.compare_and_swap(url, b"lost update", token_v1)
    assert storage.read_bytes(url) == b"v2"
    assert storage.read_versioned(storage.join(store_url, "absent.json")) == (None, None)
