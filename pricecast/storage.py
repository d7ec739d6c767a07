"""One place for artifact I/O: fsspec URLs (``file://``, ``s3://``), atomic writes, retries.

Rules every caller relies on:
- A reader never sees half a file: local writes go to a temporary name in the same directory
  and are swapped in with ``os.replace``; an S3 PUT (single or multipart) becomes visible whole.
- Transient store errors (connection reset, 5xx, throttling) are retried with exponential
  backoff (tenacity); errors a user must fix (credentials, missing bucket, store down after the
  retries) become a :class:`~pricecast.errors.StorageError` that says what to do.
- :func:`compare_and_swap` gives optimistic concurrency for small shared documents (the
  registry): S3 ``If-Match``/``If-None-Match`` conditional writes, or ``flock`` locally. It is
  never retried here: a conditional PUT whose reply was lost may have been applied, so resending
  it would answer 412 for our own write. It raises :class:`WriteOutcomeUnknownError` instead and
  the caller (the registry, by its operation ids) finds out what happened.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from pricecast.errors import ConcurrentUpdateError, StorageError, WriteOutcomeUnknownError
from pricecast.settings import get_settings

if TYPE_CHECKING:
    import fsspec

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
# New store files get this mode less the process umask (0644 under the usual umask 022).
FILE_MODE = 0o666


# --------------------------------------------------------------------------- URLs and file systems
def join(base: str, *parts: str) -> str:
    """Join URL path segments with single slashes (``join('s3://b/p', 'a', 'b.json')``)."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + str(part).strip("/")
    return out


def is_local(url: str) -> bool:
    return url.startswith("file://") or "://" not in url


def local_path(url: str) -> Path:
    """The file-system path of a ``file://`` URL (relative paths stay relative to the CWD)."""
    return Path(url[len("file://"):] if url.startswith("file://") else url)


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec file system and in-FS path for ``url``, configured from settings.

    fsspec loads here, on first use: the reads and writes below take a local store's files
    directly, so a pipeline task on a file:// store never imports it (~20 ms of each task).
    """
    import fsspec
    from fsspec.core import url_to_fs

    if is_local(url):
        return fsspec.filesystem("file"), str(local_path(url).absolute())
    try:
        return url_to_fs(url, **get_settings().storage_options(url))
    except (ImportError, ValueError) as exc:
        raise StorageError(
            f"Cannot open {url!r}: {exc}.", "Use a file:// path or an s3://bucket/prefix URL."
        ) from exc


# --------------------------------------------------------------------------- error translation
# EBUSY: s3fs maps 503 ServiceUnavailable/SlowDown (a store restarting or shedding load) to it.
_TRANSIENT_ERRNOS = {errno.ECONNRESET, errno.ETIMEDOUT, errno.EAGAIN, errno.EREMOTEIO, errno.EIO, errno.EBUSY}


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying: the store may answer the same call a moment later."""
    if isinstance(exc, (StorageError, FileNotFoundError, PermissionError, ConcurrentUpdateError)):
        return False
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return False  # a full disk does not empty itself between retries
    if _is_precondition_failed(exc):
        return False
    name = type(exc).__name__
    if name in {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError", "ClientOSError", "ServerDisconnectedError"}:
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def _is_precondition_failed(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if "PreconditionFailed" in str(seen) or "Precondition Failed" in str(seen):
            return True
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") == "PreconditionFailed":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_connection_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in {"EndpointConnectionError", "ConnectTimeoutError",
                                    "ClientConnectorError", "ConnectionRefusedError"}:
            return True
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_missing_bucket(exc: BaseException) -> bool:
    """S3's NoSuchBucket, which s3fs turns into a plain FileNotFoundError."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "NoSuchBucket" or "bucket does not exist" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate(exc: BaseException, url: str, action: str) -> StorageError:
    """Turn a low-level store error into a StorageError that names the fix."""
    if isinstance(exc, StorageError):
        return exc
    endpoint = get_settings().s3_endpoint_url or "AWS S3"
    if isinstance(exc, PermissionError) and not is_local(url):
        return StorageError(
            f"The object store refused to {action} {url!r}: access denied ({exc}).",
            "Check PRICECAST_S3_ACCESS_KEY_ID / PRICECAST_S3_SECRET_ACCESS_KEY (the Kubernetes "
            "secret pricecast-s3 on a cluster) and the bucket policy.",
        )
    if isinstance(exc, FileNotFoundError) and not is_local(url) and _is_missing_bucket(exc):
        bucket = url.split("://", 1)[1].split("/", 1)[0]
        return StorageError(
            f"The bucket {bucket!r} does not exist on {endpoint}.",
            f"Create it (e.g. `aws s3 mb s3://{bucket}` or `pricecast store init`) or fix PRICECAST_STORE_URL.",
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return StorageError(
            f"No space left on device while trying to {action} {url!r}.",
            "Free disk space or point PRICECAST_STORE_URL elsewhere; the previous artifact is intact.",
        )
    if _is_connection_failure(exc) or _is_transient(exc):
        return StorageError(
            f"The object store at {endpoint} did not answer while trying to {action} {url!r} ({exc}).",
            "Check that it is running and reachable (PRICECAST_S3_ENDPOINT_URL), then rerun; "
            "completed stages resume from their checkpoints.",
        )
    return StorageError(f"Could not {action} {url!r}: {exc}.", "See the log for the stack trace.")


def _retrying(action: str, url_arg: int = 0, retry_transient: bool = True):
    """Decorator: retry transient errors with 0.5 s, 1 s, 2 s... backoff, then translate.

    ``url_arg`` is the position of the store URL among the arguments (messages name it).
    ``retry_transient=False`` (conditional writes) raises :class:`WriteOutcomeUnknownError` on
    the first transient error instead of resending.
    """

    def decorate(fn):
        def wrapper(*args: Any, **kwargs: Any):
            url = str(args[url_arg] if len(args) > url_arg else kwargs["url"])
            attempts = get_settings().storage_retries + 1 if retry_transient else 1
            retrying = retry(
                retry=retry_if_exception(_is_transient),
                stop=stop_after_attempt(attempts),
                wait=wait_exponential(multiplier=0.5, min=0.5, max=8),
                reraise=True,
                before_sleep=lambda state: log.warning(
                    "Transient store error on %s %s (attempt %d/%d): %s",
                    action, url, state.attempt_number, attempts, state.outcome.exception(),
                ),
            )
            try:
                return retrying(fn)(*args, **kwargs)
            except FileNotFoundError as exc:
                # A missing object is the caller's business; a missing bucket is the user's to fix.
                if not is_local(url) and _is_missing_bucket(exc):
                    raise translate(exc, url, action) from exc
                raise
            except ConcurrentUpdateError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated, cause kept
                if _is_precondition_failed(exc):
                    raise ConcurrentUpdateError(
                        f"{url!r} changed while we were updating it.", "Retry the operation."
                    ) from exc
                if not retry_transient and _is_transient(exc):
                    raise WriteOutcomeUnknownError(
                        f"The store did not answer our {action} of {url!r} ({exc}); it may or may not have been applied.",
                        "Read it back before writing again; pricecast's registry does this by operation id.",
                    ) from exc
                raise translate(exc, url, action) from exc

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return decorate


# --------------------------------------------------------------------------- reads
@_retrying("check")
def exists(url: str) -> bool:
    if is_local(url):
        return local_path(url).exists()
    fs, path = filesystem(url)
    return bool(fs.exists(path))


@_retrying("read")
def read_bytes(url: str) -> bytes:
    if is_local(url):
        try:
            return local_path(url).read_bytes()
        except IsADirectoryError as exc:
            raise FileNotFoundError(str(local_path(url))) from exc
    fs, path = filesystem(url)
    try:
        return fs.cat_file(path)
    except IsADirectoryError as exc:
        raise FileNotFoundError(path) from exc


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


@_retrying("download")
def get_file(url: str, dest: str | Path, *, share: bool = False) -> Path:
    """Copy ``url`` to a local path, atomically (``share``: a hard link where it can be, as
    :func:`put_file`)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_local(url):
        source = local_path(url)
        if not source.is_file():  # checked first: no temporary file for a missing source
            raise FileNotFoundError(str(source))
        with _local_tmp(dest) as tmp:
            if not (share and _linked(source, tmp)):
                shutil.copyfile(source, tmp)
        return dest
    fs, path = filesystem(url)
    with _local_tmp(dest) as tmp:
        fs.get_file(path, str(tmp))
    return dest


@_retrying("list")
def listdir(url: str) -> list[str]:
    """Names directly below ``url`` (empty when it does not exist)."""
    fs, path = filesystem(url)
    try:
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    except FileNotFoundError as exc:
        if _is_missing_bucket(exc):
            raise
        return []


# --------------------------------------------------------------------------- writes
def new_temp_file(dest: Path) -> Path:
    """A new, empty, uniquely named hidden file beside ``dest``, to be renamed onto it.

    Created like any new file (mode 0666 less the umask), not tempfile.mkstemp's 0600: the store
    is shared (the chart's server, uid 1000, reads a hostPath store a user wrote), and a stage's
    output may become its checkpoint by a hard link (:func:`put_file`'s ``share``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    return tmp


@contextlib.contextmanager
def _local_tmp(dest: Path) -> Iterator[Path]:
    """A temporary file beside ``dest`` that replaces it only if the block succeeds."""
    tmp = new_temp_file(dest)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable: without this a crash can bring the old name back."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_chunks(fh, data: bytes) -> None:
    # Written in chunks so a fault injected per write (ENOSPC tests) hits mid-file, as a real
    # full disk would.
    for start in range(0, len(data), CHUNK):
        fh.write(data[start:start + CHUNK])


@_retrying("write")
def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` atomically: readers see the old bytes or the new, never half."""
    if is_local(url):
        with _local_tmp(local_path(url)) as tmp, open(tmp, "wb") as fh:
            _write_chunks(fh, data)
        return
    fs, path = filesystem(url)
    fs.pipe_file(path, data)


def write_text(url: str, text: str) -> None:
    write_bytes(url, text.encode("utf-8"))


@_retrying("upload", url_arg=1)
def put_file(src: str | Path, url: str, *, share: bool = False) -> None:
    """Copy a local file to ``url`` atomically (temp + rename locally, one PUT on S3).

    ``share``: for a local ``url`` on the same file system, a hard link instead of a copy, when
    the link would have the mode a copy gets. Neither name may then be rewritten in place: for
    files written once and replaced only by rename (stage outputs and their checkpoints).
    """
    src = Path(src)
    if is_local(url):
        with _local_tmp(local_path(url)) as tmp:
            if not (share and _linked(src, tmp)):
                # In the kernel (sendfile): no user-space buffer per chunk. The temporary file
                # keeps the mode it was created with.
                shutil.copyfile(src, tmp)
        return
    fs, path = filesystem(url)
    fs.put_file(str(src), path)


def _linked(src: Path, tmp: Path) -> bool:
    """Replace the fresh temporary file ``tmp`` by a hard link to ``src``; False (``tmp`` kept) if
    that cannot be (another file system, no links) or would change the file's mode.

    A 5 M-row features checkpoint is 500 MB: a copy is as much new page cache, which on this
    project's VMs costs seconds of faults, and as much disk written again.
    """
    if stat.S_IMODE(src.stat().st_mode) != stat.S_IMODE(tmp.stat().st_mode):
        return False
    spare = tmp.with_name(tmp.name + ".link")
    try:
        os.link(src, spare)
    except OSError:
        return False
    os.replace(spare, tmp)
    return True


@_retrying("delete")
def remove(url: str, recursive: bool = False) -> None:
    fs, path = filesystem(url)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(path, recursive=recursive)


@_retrying("create")
def ensure_bucket(url: str) -> None:
    """Create the bucket (S3) or directory (local) of ``url`` if missing."""
    if is_local(url):
        local_path(url).mkdir(parents=True, exist_ok=True)
        return
    fs, path = filesystem(url)
    bucket = path.split("/", 1)[0]
    if not fs.exists(bucket):
        fs.mkdir(bucket)


# --------------------------------------------------------------------------- store self-check
def conditional_writes_honoured(url: str) -> bool:
    """Whether the store under ``url`` refuses stale conditional writes, as the registry needs.

    The registry's lost-update protection (:func:`compare_and_swap`) is only as good as the
    store's support for ``If-None-Match: *`` and ``If-Match``; an older S3-compatible server may
    accept both and silently overwrite. This writes a probe object, tries to create it again and
    to replace it under a wrong version token (both must be refused), then deletes it.
    """
    probe = join(url, ".pricecast-probe", uuid.uuid4().hex)
    compare_and_swap(probe, b"first", None)
    refused = 0
    try:
        for stale_token in (None, '"0123456789abcdef0123456789abcdef"'):
            try:
                compare_and_swap(probe, b"second", stale_token)
            except ConcurrentUpdateError:
                refused += 1
    finally:
        remove(probe)
    return refused == 2


# --------------------------------------------------------------------------- hashing
def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The sha256 of a local file's bytes, kept on the file as an extended attribute with the size and
# modification time it was taken at, by whoever just wrote or verified those bytes. Read back
# only while both are unchanged; a copy of the file (another inode) has none.
_SHA256_ATTRIBUTE = "user.pricecast.sha256"


def _stamp(path: str | Path) -> str:
    status = os.stat(path)
    return f"{status.st_size}:{status.st_mtime_ns}"


def remember_sha256(path: str | Path, sha256: str) -> None:
    """Keep ``sha256`` (just computed from ``path``'s bytes) on the file for :func:`remembered_sha256`."""
    try:
        os.setxattr(path, _SHA256_ATTRIBUTE, f"{sha256} {_stamp(path)}".encode())
    except (AttributeError, OSError):  # no extended attributes on this platform or file system
        pass


def remembered_sha256(path: str | Path) -> str | None:
    """The sha256 kept on ``path`` if the file has not changed since; else None (hash it)."""
    try:
        sha256, stamp = os.getxattr(path, _SHA256_ATTRIBUTE).decode().split(" ", 1)
        return sha256 if stamp == _stamp(path) else None
    except (AttributeError, OSError, UnicodeDecodeError, ValueError):
        return None


# --------------------------------------------------------------------------- compare and swap
@_retrying("read")
def read_versioned(url: str) -> tuple[bytes | None, str | None]:
    """Current bytes of ``url`` and an opaque version token (None, None when missing).

    On S3 the token is the ETag, read *before* the body: if a writer slips in between, our
    conditional write fails and is retried, never silently overwriting the newer document.
    """
    if is_local(url):
        path = local_path(url)
        if not path.exists():
            return None, None
        data = path.read_bytes()
        return data, sha256_bytes(data)
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        if _is_missing_bucket(exc):
            raise  # an absent registry is normal; an absent bucket is a misconfiguration
        return None, None
    etag = info.get("ETag") or info.get("etag")
    return fs.cat_file(path), etag


@contextlib.contextmanager
def _local_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@_retrying("update", retry_transient=False)
def compare_and_swap(url: str, data: bytes, expected_token: str | None) -> None:
    """Write ``data`` only if ``url`` still has ``expected_token`` (None: must not exist).

    Raises:
        ConcurrentUpdateError: the document is not at ``expected_token`` (another writer, or our
            own earlier attempt whose reply was lost: the caller must tell them apart).
        WriteOutcomeUnknownError: no answer; the write may have landed. Never resent blindly.
    """
    if is_local(url):
        path = local_path(url)
        with _local_lock(path):
            current = sha256_bytes(path.read_bytes()) if path.exists() else None
            if current != expected_token:
                raise ConcurrentUpdateError(f"{url!r} changed while we were updating it.", "Retry.")
            with _local_tmp(path) as tmp, open(tmp, "wb") as fh:
                _write_chunks(fh, data)
        return
    fs, path = filesystem(url)
    condition = {"IfNoneMatch": "*"} if expected_token is None else {"IfMatch": expected_token}
    fs.pipe_file(path, data, **condition)
    fs.invalidate_cache(path)
