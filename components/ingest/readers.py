"""From a source's bytes to a table: format detection, and the broken files people really get.

Every failure names the problem and the fix: an empty download, a header without rows, bytes
that are not the declared encoding, a file cut short (CSV, JSON or Parquet), or an HTML page
where data was expected (a login page, a 200 error page, a wrong link).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pricecast.errors import ConfigError, DataFormatError

FORMATS = ("csv", "json", "parquet")
_EXTENSIONS = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv",
    ".json": "json", ".jsonl": "json", ".ndjson": "json",
    ".parquet": "parquet", ".pq": "parquet",
}
_CONTENT_TYPES = {"csv": "csv", "json": "json", "parquet": "parquet"}
_PARQUET_MAGIC = b"PAR1"


def detect_format(name: str, declared: str = "auto", content_type: str = "", data: bytes = b"") -> str:
    """The table format: declared, else the extension, else the Content-Type, else the bytes."""
    if declared != "auto":
        if declared not in FORMATS:
            raise ConfigError(f"Unknown format {declared!r}.", f"Use auto or one of: {', '.join(FORMATS)}.")
        return declared
    suffix = PurePosixPath(urlsplit(name).path).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    media = content_type.split(";", 1)[0].strip().lower()
    for marker, fmt in _CONTENT_TYPES.items():
        if marker in media:
            return fmt
    if data.startswith(_PARQUET_MAGIC):
        return "parquet"
    return "json" if data.lstrip()[:1] in (b"[", b"{") else "csv"


def check_payload(data: bytes, name: str, content_type: str = "") -> None:
    """Reject what is certainly not a table: no bytes at all, or an HTML page."""
    if not data.strip():
        raise DataFormatError(
            f"The source {name} is empty (0 bytes of data).",
            "Check that the export or download finished, then point the source at a file with a "
            "header and rows.",
        )
    head = data[:512].lstrip().lower()
    if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html")):
        raise DataFormatError(
            f"The source {name} returned an HTML page, not data (a login, error or landing page).",
            "Open the URL in a browser to see the page; use the direct download link of the CSV, "
            "JSON or Parquet file (and credentials if it needs them).",
        )


def codec_of(encoding: str) -> str:
    """The Python codec reading ``encoding`` (UTF-8 skips a byte-order mark)."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def decode(data: bytes, encoding: str, name: str) -> str:
    """Bytes to text; a decoding error names the byte offset and line and how to convert."""
    codec = codec_of(encoding)
    try:
        return data.decode(codec)
    except LookupError as exc:
        raise ConfigError(f"Unknown encoding {encoding!r}.",
                          "Use a Python codec name such as utf-8, latin-1 or cp1252.") from exc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start:exc.start + 1].hex()
        raise DataFormatError(
            f"The source {name} is not valid {encoding.upper()}: byte 0x{bad} at offset {exc.start} "
            f"(line {line}) cannot be decoded.",
            "Pass the file's real encoding (--encoding latin-1, cp1252, ... or `encoding:` in the "
            "config), or convert it first: iconv -f latin1 -t utf-8 IN.csv > OUT.csv.",
        ) from exc


def _no_rows(name: str, what: str = "has a header but no rows") -> DataFormatError:
    return DataFormatError(
        f"The source {name} {what}.",
        "Check that the export finished and wrote data rows; an empty extract cannot be validated "
        "or trained on.",
    )


def _truncated(name: str, detail: str) -> DataFormatError:
    return DataFormatError(
        f"The source {name} looks truncated: {detail}.",
        "Download or export it again and check that the copy finished (compare the size or a "
        "checksum with the original).",
    )


# --------------------------------------------------------------------------- CSV
# Delimited text: comma-separated, or, when the header line has no comma outside quotes, the
# semicolon, tab or pipe it has most of (exports from European locales use semicolons, and
# decimal commas with them; databases and terminals write tabs and pipes).
_OTHER_DELIMITERS = (";", "\t", "|")
_QUOTED = re.compile(r'"[^"]*"')
# A decimal comma: digits, a comma, digits. No thousands separator: "1.234,5" stays text, and
# validate names its rows, rather than a guess turning it into 1.2345.
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+(,\d+)?\s*$")


def sniff_delimiter(header: str) -> str:
    """The field separator of a header line: a comma if it has one outside quotes, else the
    semicolon, tab or pipe it has most of, else a comma (a one-column file)."""
    unquoted = _QUOTED.sub("", header)
    if "," in unquoted:
        return ","
    counts = {delimiter: unquoted.count(delimiter) for delimiter in _OTHER_DELIMITERS}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def with_decimal_commas(frame: pd.DataFrame, delimiter: str, keep_as_text: tuple[str, ...] = ()) -> pd.DataFrame:
    """In a semicolon-separated file, the text columns whose every value is a number written with
    a decimal comma ("98,84"), as numbers; the ``keep_as_text`` columns and the rest unchanged.

    Only there: with commas separating fields a decimal comma cannot occur unquoted, and a
    quoted "1,234" in a comma file is a thousands separator.
    """
    if delimiter != ";":
        return frame
    kept = {column.strip().casefold() for column in keep_as_text}
    for column in frame.columns:
        values = frame[column]
        if str(column).strip().casefold() in kept or pd.api.types.is_numeric_dtype(values):
            continue
        present = values.dropna().astype(str)
        if len(present) and present.str.contains(",", regex=False).any() and present.str.match(_DECIMAL_COMMA).all():
            frame[column] = pd.to_numeric(values.str.replace(",", ".", regex=False))
    return frame


def _split_line(line: str, name: str, which: str, delimiter: str = ",") -> list[str]:
    """One CSV line's fields; the csv module's own errors (a field over its size limit, a NUL
    byte) become a DataFormatError that says where and what to do."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error as exc:
        raise DataFormatError(
            f"The {which} line of {name} cannot be split into CSV fields ({exc}; the line has "
            f"{len(line):,} characters, starting {line[:40]!r}).",
            "Price files have short fields: look for a quote that is opened and never closed, or a "
            "file that is not comma-separated text (check --format and the export settings).",
        ) from exc


def text_dtypes(header: list[str], keep_as_text: tuple[str, ...]) -> dict[str, str]:
    """read_csv dtypes keeping the ``keep_as_text`` columns (matched ignoring case) as strings."""
    wanted = {column.strip().casefold() for column in keep_as_text}
    return {column: "str" for column in header if column.strip().casefold() in wanted}


def iter_csv(handle: BinaryIO, name: str, encoding: str, keep_as_text: tuple[str, ...] = (),
             batch_rows: int = 1 << 20, probe_bytes: int = 1 << 16) -> Iterator[pd.DataFrame] | None:
    """A CSV file's rows as frames of at most ``batch_rows``, parsed as :func:`parse_csv` does.

    None when the file's two ends already show something :func:`parse_csv` would refuse (no
    data line, a short last line, an unsplittable header or last line, undecodable ends): the
    caller then reads it whole, which raises the exact error. Problems found later (a bad byte,
    a malformed line) raise as pandas reports them; the caller falls back on those too.
    """
    codec = codec_of(encoding)
    size = handle.seek(0, io.SEEK_END)
    handle.seek(0)
    head = handle.read(probe_bytes)
    handle.seek(max(size - probe_bytes, 0))
    tail = handle.read(probe_bytes)
    try:
        head_text = head.decode(codec, errors="strict" if size <= probe_bytes else "ignore").lstrip()
        tail_text = tail.decode(codec.replace("-sig", ""), errors="ignore").rstrip()
        codecs.lookup(codec)
    except (UnicodeDecodeError, LookupError):
        return None
    if "\n" not in head_text or "\n" not in tail_text:
        return None
    header_line = head_text[:head_text.find("\n")].rstrip("\r")
    delimiter = sniff_delimiter(header_line)
    try:
        header = _split_line(header_line, name, "first", delimiter)
        last = _split_line(tail_text[tail_text.rfind("\n") + 1:].rstrip("\r"), name, "last", delimiter)
    except DataFormatError:
        return None
    if len(last) < len(header):
        return None
    handle.seek(0)

    def batches() -> Iterator[pd.DataFrame]:
        reader = pd.read_csv(handle, encoding=codec, dtype=text_dtypes(header, keep_as_text) or None,
                             index_col=False, chunksize=batch_rows, sep=delimiter)
        with reader:
            while True:
                # As parse_csv: a row with more fields than the header is an error, not a shift.
                # The filter is held while pandas parses, never while the caller runs.
                with warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)
                    try:
                        chunk = next(reader)
                    except StopIteration:
                        return
                yield with_decimal_commas(chunk, delimiter, keep_as_text)

    return batches()


def parse_csv(text: str, name: str, keep_as_text: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read CSV text; a last line with fewer fields than the header means a cut-off file.

    ``keep_as_text`` columns are read as strings (tickers such as ``007`` keep their zeros).
    """
    body = text.strip()
    if not body:
        raise DataFormatError(f"The source {name} holds only blank lines.",
                              "Point it at a file with a header and rows.")
    if "\n" not in body:
        raise _no_rows(name)
    # Only the first and last lines are split here: a 5 M-line file must not become 5 M strings.
    header_line = body[:body.find("\n")].rstrip("\r")
    delimiter = sniff_delimiter(header_line)
    header = _split_line(header_line, name, "first", delimiter)
    last_line = body[body.rfind("\n") + 1:].rstrip("\r")
    last = _split_line(last_line, name, "last", delimiter)
    if len(last) < len(header):
        # pandas would pad the short line with NaN and carry on; we refuse to guess.
        line_no = body.count("\n") + 1
        raise _truncated(name, f"its last line (line {line_no}) has {len(last)} of the header's "
                               f"{len(header)} fields: {last_line[:80]!r}")
    dtypes = text_dtypes(header, keep_as_text)
    try:
        with warnings.catch_warnings():
            # index_col=False + this filter: a row with more fields than the header is an error,
            # not (pandas' default) a silent shift of every column into the index.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), dtype=dtypes or None, index_col=False, sep=delimiter)
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        _refuse_a_title_line(body, header_line, header, name, exc)
        shown = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}[delimiter]
        what = "CSV" if delimiter == "," else f"{shown}-separated text"
        raise DataFormatError(
            f"The source {name} is not well-formed {what}: {str(exc).rstrip('.')}.",
            f"The header line sets the delimiter (a {shown}); check that every line uses it, and the "
            "quoting of fields on that line.",
        ) from exc
    if frame.empty:
        raise _no_rows(name)
    return with_decimal_commas(frame, delimiter, keep_as_text)


def _refuse_a_title_line(body: str, first_line: str, first: list[str], name: str, exc: Exception) -> None:
    """Raise the error for a file whose first line is a title above the header (exports often
    start with one); nothing when that is not the case.

    A title: fewer fields than the next line, which looks like a header (no field is a number)
    and has as many fields as the line after it. A data row with a field too many is not one.
    """
    lines = body[len(first_line):].lstrip("\r\n").split("\n", 2)[:2]
    if len(lines) < 2:
        return
    delimiter = sniff_delimiter(lines[0])
    second, third = (_split_line(line.rstrip("\r"), name, "next", delimiter) for line in lines)
    if len(first) < len(second) == len(third) and not any(_is_number(field) for field in second):
        raise DataFormatError(
            f"The source {name} does not start with its header: its first line, {first_line[:60]!r}, has "
            f"{len(first)} field(s) and the next, {lines[0].rstrip()[:60]!r}, has {len(second)} (a title above "
            "the header?).",
            "Delete the lines above the header row (tail -n +2 FILE > NEW.csv drops one), or export the "
            "table without a title.",
        ) from exc


def _is_number(field: str) -> bool:
    try:
        float(field.replace(",", "."))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- JSON
def _frame_from_json(obj: object, name: str) -> pd.DataFrame:
    if isinstance(obj, list):
        if obj and not all(isinstance(item, dict) for item in obj[:100]):
            raise DataFormatError(f"The JSON array in {name} does not hold objects.",
                                  'Use records: [{"date": ..., "ticker": ..., "price": ...}, ...].')
        return pd.DataFrame.from_records(obj)
    if isinstance(obj, dict):
        values = list(obj.values())
        if len(values) == 1 and isinstance(values[0], list):  # {"data": [records...]} from APIs
            return _frame_from_json(values[0], name)
        if values and all(isinstance(v, list) for v in values):
            try:
                return pd.DataFrame(obj)
            except ValueError as exc:
                raise DataFormatError(f"The JSON columns in {name} have different lengths.",
                                      "Export every column with one value per row.") from exc
        if values and all(isinstance(v, dict) for v in values):  # pandas' "columns" orientation
            frame = pd.DataFrame(obj)
            if all(str(i).isdigit() for i in frame.index):
                frame.index = frame.index.astype(int)
                frame = frame.sort_index()
            return frame.reset_index(drop=True)
    raise DataFormatError(
        f"The JSON in {name} is neither records, columns nor JSON lines.",
        'Use records [{"date": ..., "price": ...}], columns {"date": [...], "price": [...]} or one '
        "object per line.",
    )


def parse_json(text: str, name: str) -> pd.DataFrame:
    """Read records, columns, or JSON lines; values keep their JSON types."""
    body = text.strip()
    try:
        frame = _frame_from_json(json.loads(body), name)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and body.startswith("{"):
            frame = _parse_json_lines(body, name)
        elif exc.pos >= len(body) - 1 or exc.msg.startswith("Unterminated"):
            raise _truncated(name, f"the JSON ends early ({exc.msg} at character {exc.pos} of {len(body)})") from exc
        else:
            raise DataFormatError(f"The source {name} is not valid JSON: {exc.msg} at line {exc.lineno} "
                                  f"column {exc.colno}.", "Fix the JSON or export the data again.") from exc
    if frame.empty:
        raise _no_rows(name, "holds no rows (empty JSON)")
    return frame


def _parse_json_lines(body: str, name: str) -> pd.DataFrame:
    try:
        json.loads(body[body.rfind("\n") + 1:])
    except json.JSONDecodeError as exc:
        line = body.count("\n") + 1
        raise _truncated(name, f"its last line (line {line}) is not a complete JSON object") from exc
    try:
        return pd.read_json(io.StringIO(body), lines=True, dtype=False)  # dtype=False: raw values
    except ValueError as exc:
        raise DataFormatError(f"The JSON lines in {name} cannot be read: {exc}.",
                              "Write one complete JSON object per line.") from exc


# --------------------------------------------------------------------------- Parquet
def _not_parquet(name: str) -> DataFormatError:
    return DataFormatError(f"The source {name} is not a Parquet file (it lacks the PAR1 header).",
                           "Pass the right --format, or check the file.")


def _corrupt_parquet(name: str, exc: Exception) -> DataFormatError:
    return DataFormatError(f"The Parquet file {name} is corrupt: {exc}.", "Write or download it again.")


def _empty_parquet(name: str) -> DataFormatError:
    return _no_rows(name, "has columns but no rows (an empty Parquet file)")


def parse_parquet(data: bytes, name: str) -> pd.DataFrame:
    """Read Parquet bytes; a missing footer means the file was cut short."""
    if not data.startswith(_PARQUET_MAGIC):
        raise _not_parquet(name)
    if not data.endswith(_PARQUET_MAGIC):
        raise _truncated(name, f"the Parquet file ends after {len(data)} bytes without its footer")
    try:
        frame = pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _corrupt_parquet(name, exc) from exc
    if frame.empty:
        raise _empty_parquet(name)
    return frame


def iter_parquet(handle: BinaryIO, name: str, batch_rows: int = 1 << 20) -> Iterator[pd.DataFrame]:
    """A seekable Parquet file's rows as frames of at most ``batch_rows``, with the checks of
    :func:`parse_parquet` (header, footer, corrupt, no rows), the same errors, raised first.

    Memory is one batch plus the row group being decoded (a file written as one huge row group
    is decoded whole).
    """
    head = handle.read(4)
    if head != _PARQUET_MAGIC:
        raise _not_parquet(name)
    size = handle.seek(0, io.SEEK_END)
    handle.seek(max(size - 4, 0))
    if size < 8 or handle.read(4) != _PARQUET_MAGIC:
        raise _truncated(name, f"the Parquet file ends after {size} bytes without its footer")
    handle.seek(0)
    try:
        parquet = pq.ParquetFile(handle)
        if parquet.metadata.num_rows == 0:
            raise _empty_parquet(name)
        for batch in parquet.iter_batches(batch_size=batch_rows):
            yield batch.to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _corrupt_parquet(name, exc) from exc


def parse_table(data: bytes, fmt: str, name: str, encoding: str = "utf-8",
                keep_as_text: tuple[str, ...] = ()) -> pd.DataFrame:
    """Parse ``data`` in format ``fmt`` (csv/json/parquet) with every check above."""
    if fmt == "parquet":
        return parse_parquet(data, name)
    text = decode(data, encoding, name)
    return parse_json(text, name) if fmt == "json" else parse_csv(text, name, keep_as_text)


__all__ = ["FORMATS", "check_payload", "codec_of", "decode", "detect_format", "iter_csv", "iter_parquet",
           "parse_csv", "parse_json", "parse_parquet", "parse_table", "sniff_delimiter", "text_dtypes",
           "with_decimal_commas"]
