"""Compressed sources: gzip, bzip2, xz and zstd files and one-file zip archives, read as their content.

Price files come as ``prices.csv.gz`` from a data vendor, or zipped from a download page. A
compressed source is recognised by its magic bytes, not its name (a URL may have no suffix, a
file may be misnamed), and decompressed in memory before its format is detected; the format is
then read from the name without the compression suffix (or the zip member's name) and the
content's own bytes. A zip archive must hold one data file. An Excel workbook is a zip archive
too, and is told apart, so its user learns to export a CSV instead of reading about zip members.

The content is capped at :data:`MAX_CONTENT_BYTES`: a small file that decompresses without end
(a corrupt or hostile one) fails with an error instead of exhausting the task's memory.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import lzma
import zipfile
import zlib
from pathlib import PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

from pricecast.errors import DataFormatError

MAX_CONTENT_BYTES = 8 << 30  # a 50 M-row price CSV is about 2.2 GB
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip",  # an empty archive
}
_SUFFIXES = {".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd", ".zip"}


@dataclasses.dataclass(frozen=True)
class Content:
    """A source's data as its format reads it."""

    data: bytes
    name: str  # what its format is detected from: the name without ``.gz``, or the zip member's
    compression: str | None = None  # "gzip", "bzip2", "xz", "zstd", "zip", or None


def compression_of(head: bytes) -> str | None:
    """The compression the first bytes of a source announce, or None for plain data."""
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def decompress(data: bytes, name: str, limit: int = MAX_CONTENT_BYTES) -> Content:
    """``data`` uncompressed (as is when it is not compressed); ``name`` is the source's name.

    Raises:
        DataFormatError: The data is cut short or corrupt, decompresses to more than ``limit``
            bytes, or is a zip archive without exactly one data file (or an Excel workbook).
    """
    kind = compression_of(data)
    if kind is None:
        return Content(data, name)
    if kind == "zip":
        return _zip_member(data, name, limit)
    try:
        content = _read_capped(_stream(kind, data), limit, name, kind)
    except (EOFError, OSError, lzma.LZMAError, zlib.error, ValueError) as exc:
        raise DataFormatError(
            f"The source {name} is {kind}-compressed, but its data is cut short or corrupt ({exc}).",
            f"Download or export it again and check the copy is whole ({_test_command(kind)} {_base(name)}).",
        ) from exc
    if content[257:262] == b"ustar":  # a .tar.gz: many files in one
        raise DataFormatError(f"The source {name} is a tar archive ({kind}-compressed), not one table.",
                              f"Extract the file you want (tar -xf {_base(name)} FILE) and pass its path.")
    return Content(content, _without_suffix(name), kind)


def _stream(kind: str, data: bytes) -> BinaryIO:
    source = io.BytesIO(data)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=source)
    if kind == "bzip2":
        return bz2.BZ2File(source)
    if kind == "xz":
        return lzma.LZMAFile(source)
    import pyarrow as pa  # zstd: pyarrow's codec (the standard library has none before 3.14)

    return pa.input_stream(pa.py_buffer(data), compression="zstd")


def _read_capped(stream: BinaryIO, limit: int, name: str, kind: str) -> bytes:
    with stream:
        content = stream.read(limit + 1)
    if len(content) > limit:
        raise DataFormatError(
            f"The source {name} decompresses ({kind}) to more than {_size(limit)}.",
            "Decompress it yourself and pass the file (CSV and Parquet files are read in batches), "
            "or split it into smaller files.",
        )
    return content


def _zip_member(data: bytes, name: str, limit: int) -> Content:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"The zip archive {name} is cut short or corrupt ({exc}).",
                              f"Download or create it again (unzip -t {_base(name)} shows what is wrong).") from exc
    with archive:
        names = archive.namelist()
        if "[Content_Types].xml" in names and any(n.startswith(("xl/", "word/", "ppt/")) for n in names):
            raise DataFormatError(
                f"The source {name} is an Office document (an Excel workbook?), not CSV, JSON or Parquet.",
                "Export the sheet as CSV (Excel: File > Save As > CSV UTF-8) and pass that file.",
            )
        members = [info for info in archive.infolist()
                   if not info.is_dir() and not info.filename.startswith("__MACOSX/")
                   and PurePosixPath(info.filename).name not in (".DS_Store", "Thumbs.db")]
        if len(members) != 1:
            listed = ", ".join(m.filename for m in members[:5]) + (", ..." if len(members) > 5 else "")
            raise DataFormatError(
                f"The zip archive {name} holds {len(members)} files{f' ({listed})' if members else ''}; "
                "a source is one table.",
                "Zip one file, or extract the one you want and pass its path "
                f"(unzip {_base(name)} FILE).",
            )
        member = members[0]
        if member.file_size > limit:
            raise DataFormatError(
                f"The zip archive {name} holds {member.filename}, {member.file_size:,} bytes uncompressed: "
                f"more than {_size(limit)}.",
                "Extract it and pass the file (CSV and Parquet files are read in batches).",
            )
        try:
            with archive.open(member) as handle:
                content = _read_capped(handle, limit, name, "zip")
        except RuntimeError as exc:  # zipfile's "File ... is encrypted, password required"
            raise DataFormatError(f"The zip archive {name} is password-protected.",
                                  f"Extract it first (unzip {_base(name)}) and pass the file.") from exc
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError) as exc:
            raise DataFormatError(f"The zip archive {name} is cut short or corrupt ({exc}).",
                                  f"Download or create it again (unzip -t {_base(name)} shows what is wrong).") from exc
    inner = f"{name}!{member.filename}"
    if compression_of(content) not in (None, "zip"):  # prices.csv.gz inside a zip
        nested = decompress(content, inner, limit)
        return Content(nested.data, PurePosixPath(nested.name).name, "zip")
    return Content(content, member.filename, "zip")


def _size(limit: int) -> str:
    return f"{limit / (1 << 30):g} GiB" if limit >= 1 << 30 else f"{limit:,} bytes"


def _base(name: str) -> str:
    return PurePosixPath(urlsplit(name).path).name or name


def _without_suffix(name: str) -> str:
    path = PurePosixPath(urlsplit(name).path)
    return str(path.with_suffix("")) if path.suffix.lower() in _SUFFIXES else str(path)


def _test_command(kind: str) -> str:
    return {"gzip": "gzip -t", "bzip2": "bzip2 -t", "xz": "xz -t", "zstd": "zstd -t"}[kind]


__all__ = ["MAX_CONTENT_BYTES", "Content", "compression_of", "decompress"]
