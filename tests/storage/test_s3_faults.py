"""Object-store faults against a real SeaweedFS: each ends in a clear StorageError or a success.

Wrong credentials, a missing bucket and a store that is down must name what to fix; a store
that is briefly unavailable (restarting, answering 503) must be retried, not reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from pricecast import storage
from pricecast.errors import StorageError
from pricecast.registry import RegistryStore
from pricecast.settings import get_settings
from tests.storage.flaky_proxy import flaky_proxy
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.s3


class _Warnings(logging.Handler):
    """Collects pricecast.storage warnings (the retry log), whatever logs.configure did."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def retry_log() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("pricecast.storage")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(f"PRICECAST_{key.upper()}", value)
    get_settings.cache_clear()


@pytest.mark.parametrize("setting", ["s3_access_key_id", "s3_secret_access_key"])
def test_wrong_credentials_name_the_credential_settings(
    store_url: str, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    storage.write_text(storage.join(store_url, "ok.txt"), "written with good credentials")
    _use(monkeypatch, **{setting: "not-the-right-one"})

    for attempt in (
        lambda: storage.read_text(storage.join(store_url, "ok.txt")),
        lambda: storage.write_text(storage.join(store_url, "new.txt"), "x"),
        lambda: RegistryStore(store_url).load(),
    ):
        with pytest.raises(StorageError) as info:
            attempt()
        assert "PRICECAST_S3_ACCESS_KEY_ID" in str(info.value)
        assert "PRICECAST_S3_SECRET_ACCESS_KEY" in str(info.value)
        assert "access denied" in info.value.problem


def test_missing_bucket_is_named_for_reads_writes_and_the_registry(store_url: str, seaweed: SeaweedS3) -> None:
    url = f"s3://no-such-bucket-{int(time.time())}/store"

    for action, attempt in (
        ("read", lambda: storage.read_bytes(storage.join(url, "raw.parquet"))),
        ("write", lambda: storage.write_bytes(storage.join(url, "raw.parquet"), b"x")),
        ("registry", lambda: RegistryStore(url).load()),
    ):
        with pytest.raises(StorageError) as info:
            attempt()
        assert "no-such-bucket" in info.value.problem, action
        assert "does not exist" in info.value.problem, action
        assert info.value.fix, action
    # Nothing was created behind the user's back.
    names = [b["Name"] for b in seaweed.client().list_buckets()["Buckets"]]
    assert not [n for n in names if n.startswith("no-such-bucket")]


def test_store_down_fails_after_the_retries_with_the_endpoint_named(
    store_url: str, monkeypatch: pytest.MonkeyPatch, retry_log: _Warnings
) -> None:
    with flaky_proxy(upstream_port=1, fail_first=0) as proxy:
        dead_endpoint = proxy.endpoint_url  # a port that was just ours and is now closed
    _use(monkeypatch, s3_endpoint_url=dead_endpoint, storage_retries="2")

    with pytest.raises(StorageError) as info:
        storage.write_text(storage.join(store_url, "x.txt"), "x")

    assert dead_endpoint in info.value.problem and "did not answer" in info.value.problem
    assert "PRICECAST_S3_ENDPOINT_URL" in info.value.fix
    assert len([m for m in retry_log.messages if "Transient store error" in m]) == 2


def test_a_store_that_restarts_mid_write_is_retried_and_keeps_its_data(
    store_url: str, seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch, retry_log: _Warnings
) -> None:
    before = storage.join(store_url, "before.txt")
    storage.write_text(before, "written before the outage")
    _use(monkeypatch, storage_retries="6")  # backoff 0.5+1+2+4+8 s: room for a restart under load
    seaweed.stop()
    # Down for 5 s: longer than botocore's and s3fs's own retries (about 3 s together), which
    # bridged a 1 s outage on their own now and then, so this always reaches pricecast's retry.
    restarter = threading.Timer(5.0, seaweed.start)
    restarter.start()
    try:
        storage.write_text(storage.join(store_url, "during.txt"), "written across the outage")
    finally:
        restarter.join()

    assert any("Transient store error" in m for m in retry_log.messages)
    assert storage.read_text(storage.join(store_url, "during.txt")) == "written across the outage"
    assert storage.read_text(before) == "written before the outage"


def test_transient_503s_are_retried_until_the_store_answers(
    store_url: str, seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch, retry_log: _Warnings
) -> None:
    url = storage.join(store_url, "flaky.txt")
    with flaky_proxy(seaweed.ports["s3"], fail_first=3) as proxy:
        _use(monkeypatch, s3_endpoint_url=proxy.endpoint_url, storage_retries="3")
        storage.write_text(url, "survived three 503s")
        proxy.fail_first += 3  # and three more for the read
        assert storage.read_text(url) == "survived three 503s"

    assert proxy.failed == 6
    assert any("Transient store error" in m for m in retry_log.messages)


def test_a_store_that_keeps_answering_503_gives_a_storage_error(
    store_url: str, seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    with flaky_proxy(seaweed.ports["s3"], fail_first=1000) as proxy:
        _use(monkeypatch, s3_endpoint_url=proxy.endpoint_url, storage_retries="1")
        with pytest.raises(StorageError) as info:
            storage.write_text(storage.join(store_url, "never.txt"), "x")
    assert proxy.failed >= 2, "retried at least once before giving up"
    assert "never.txt" in info.value.problem
