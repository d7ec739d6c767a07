"""Reading files: every format and orientation, and each broken file's error and fix."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from components.ingest.core import ingest_frame, load_source_spec
from components.ingest.readers import detect_format
from components.ingest.tests.support import ingest_file, parquet_bytes
from pricecast.errors import ConfigError, DataFormatError, SourceError

FRAME = pd.DataFrame({"date": ["2021-01-04", "2021-01-05", "2021-01-06"], "ticker": ["007", "007", "AAA"],
                      "price": [10.0, 10.5, 11.25]})




@pytest.mark.parametrize(("name", "payload"), [
    ("p.csv", FRAME.to_csv(index=False).encode()),
    ("p.json", FRAME.to_json(orient="records").encode()),
    ("columns.json", FRAME.to_json(orient="columns").encode()),
    ("lists.json", json.dumps(FRAME.to_dict("list")).encode()),
    ("wrapped.json", json.dumps({"data": FRAME.to_dict("records")}).encode()),
    ("p.jsonl", FRAME.to_json(orient="records", lines=True).encode()),
    ("p.parquet", parquet_bytes(FRAME)),
])
def test_every_format_and_orientation_reads_the_same_table(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    frame = ingest_file(path)
    assert frame["ticker"].tolist() == ["007", "007", "AAA"]  # leading zeros kept
    assert frame["price"].astype(float).tolist() == [10.0, 10.5, 11.25]
    assert frame["date"].astype(str).tolist() == FRAME["date"].tolist()  # raw: validate parses


def test_file_urls_and_a_declared_format(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(FRAME.to_csv(index=False).encode())
    assert len(ingest_file(f"file://{path}", format="csv")) == 3


def test_format_detection_order():
    assert detect_format("x.PARQUET") == "parquet"
    assert detect_format("https://h/a.csv?x=1") == "csv"
    assert detect_format("https://h/api", content_type="application/json; charset=utf-8") == "json"
    assert detect_format("blob", data=b"PAR1....") == "parquet"
    assert detect_format("blob", data=b'  [{"a": 1}]') == "json"
    assert detect_format("blob", data=b"a,b\n1,2\n") == "csv"
    assert detect_format("x.csv", declared="json") == "json"
    with pytest.raises(ConfigError):
        detect_format("x.csv", declared="xlsx")


def test_other_encodings_and_a_bom(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("date,ticker,price\n2021-01-04,CAFÉ,1.5\n".encode("latin-1"))
    assert ingest_file(latin, encoding="latin-1")["ticker"].tolist() == ["CAFÉ"]
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfdate,ticker,price\n2021-01-04,A,1.5\n")
    assert list(ingest_file(bom).columns) == ["date", "ticker", "price"]


# --------------------------------------------------------------------------- broken files
def _broken_cases() -> dict[str, tuple[bytes, str, type, list[str]]]:
    csv_bytes = FRAME.to_csv(index=False).encode()
    parquet = parquet_bytes(FRAME)
    records = FRAME.to_json(orient="records").encode()
    lines = FRAME.to_json(orient="records", lines=True).encode()
    return {  # name -> (bytes, suffix, error class, words the problem must contain)
        "empty": (b"", ".csv", DataFormatError, ["empty", "0 bytes"]),
        "header_only": (b"date,ticker,price\n", ".csv", DataFormatError, ["header but no rows"]),
        "header_and_blank_lines": (b"date,ticker,price\n\n\n", ".csv", DataFormatError, ["header but no rows"]),
        "empty_json_array": (b"[]", ".json", DataFormatError, ["no rows"]),
        "empty_parquet": (parquet_bytes(FRAME.iloc[:0]), ".parquet", DataFormatError, ["no rows"]),
        "non_utf8": (csv_bytes.replace(b"AAA", b"A\xff\xfeA"), ".csv", DataFormatError,
                     ["UTF-8", "offset 70", "line 4", "0xff"]),
        "truncated_csv": (csv_bytes[:-9], ".csv", DataFormatError, ["truncated", "line 4", "2 of the header's 3"]),
        "truncated_json": (records[:-20], ".json", DataFormatError, ["truncated"]),
        "truncated_json_lines": (lines[:-12], ".jsonl", DataFormatError, ["truncated", "line 3"]),
        "truncated_parquet": (parquet[:-40], ".parquet", DataFormatError, ["truncated", "Parquet"]),
        "not_parquet": (csv_bytes, ".parquet", DataFormatError, ["not a Parquet file"]),
        "corrupt_parquet": (parquet[:8] + b"\0" * (len(parquet) - 12) + b"PAR1", ".parquet", DataFormatError,
                            ["corrupt"]),
        "html_file": (b"<!DOCTYPE html><html>Sign in</html>", ".csv", DataFormatError, ["HTML page, not data"]),
        "invalid_json": (b'{"date": [1, 2], oops}', ".json", DataFormatError, ["not valid JSON", "line 1"]),
        "json_scalars": (b'{"date": 1, "price": 2}', ".json", DataFormatError, ["neither records"]),
        "ragged_csv": (b"date,ticker,price\n2021-01-04,A,1,EXTRA\n2021-01-05,A,2\n", ".csv", DataFormatError,
                       ["not well-formed CSV"]),
        "ragged_semicolons": (b"date;ticker;price\n2021-01-04;A;1;EXTRA\n2021-01-05;A;2\n", ".csv", DataFormatError,
                              ["not well-formed semicolon-separated text"]),
        "title_line": (b"Daily prices, exported 2024-01-05\ndate,ticker,price\n2021-01-04,A,1\n2021-01-05,A,2\n",
                       ".csv", DataFormatError, ["does not start with its header", "2 field(s)", "title above"]),
        "title_semicolons": (b"Kurse\nDatum;Ticker;Schluss\n04.01.2021;A;1,5\n05.01.2021;A;2\n", ".csv",
                             DataFormatError, ["does not start with its header", "'Kurse', has 1 field(s)"]),
    }


@pytest.mark.parametrize("case", sorted(_broken_cases()))
def test_broken_files_fail_with_the_problem_and_the_fix(tmp_path, case):
    payload, suffix, error, words = _broken_cases()[case]
    path = tmp_path / f"{case}{suffix}"
    path.write_bytes(payload)
    with pytest.raises(error) as info:
        ingest_file(path)
    for word in words:
        assert word in info.value.problem, info.value.problem
    assert info.value.fix
    assert info.value.exit_code == 3


def test_a_missing_file_says_where_it_looked(tmp_path):
    with pytest.raises(SourceError) as info:
        ingest_file(tmp_path / "nope.csv")
    assert "does not exist" in info.value.problem and "Check the path" in info.value.fix


def test_a_unicode_error_names_iconv_and_the_encoding_option(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"date,ticker,price\n2021-01-04,\xe9,1\n")
    with pytest.raises(DataFormatError) as info:
        ingest_file(path)
    assert "--encoding" in info.value.fix and "iconv" in info.value.fix


def test_ticker_text_survives_a_differently_cased_header(tmp_path):
    path = tmp_path / "cased.csv"
    path.write_bytes(b"Date,Ticker,Price\n2021-01-04,007,1.5\n")
    assert ingest_file(path)["ticker"].tolist() == ["007"]


@pytest.mark.parametrize("where", ["header", "last line"])
def test_a_field_over_the_csv_modules_limit_is_a_named_error_not_a_csv_traceback(tmp_path, where):
    import csv

    blob = "x" * (csv.field_size_limit() + 1)  # e.g. an opened quote that swallows the rest
    lines = ["date,ticker,price", "2024-01-02,AAA,1.0", "2024-01-03,AAA,1.1"]
    if where == "header":
        lines[0] = f'date,ticker,price,"{blob}"'
    else:
        lines[-1] = f'2024-01-03,AAA,"{blob}"'
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        ingest_frame(load_source_spec(source=str(path)))
    which = "first" if where == "header" else "last"
    assert info.value.problem.startswith(f"The {which} line of ") and "field larger than field limit" in info.value.problem
    assert "quote that is opened and never closed" in info.value.fix


# --------------------------------------------------------------------------- delimiters
def _delimited(delimiter: str, decimal: str = ".", line_end: str = "\n") -> bytes:
    rows = [delimiter.join(["date", "ticker", "price"])]
    rows += [delimiter.join([d, t, f"{p:g}".replace(".", decimal)]) for d, t, p in FRAME.itertuples(index=False)]
    return (line_end.join(rows) + line_end).encode()


@pytest.mark.parametrize(("name", "payload"), [
    ("eu.csv", _delimited(";", ",", "\r\n")),  # a European export: semicolons and decimal commas
    ("dots.csv", _delimited(";")),  # semicolons, decimal points
    ("p.txt", _delimited("\t")),
    ("p.tsv", _delimited("\t")),  # no known suffix: the bytes say CSV-like text
    ("p.psv", _delimited("|")),
])
def test_a_semicolon_tab_or_pipe_separated_file_reads_like_the_csv(tmp_path, name, payload) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    plain = tmp_path / "plain.csv"
    plain.write_bytes(FRAME.to_csv(index=False).encode())
    pd.testing.assert_frame_equal(ingest_file(path), ingest_file(plain))


def test_the_delimiter_comes_from_the_header_line_outside_quotes() -> None:
    from components.ingest.readers import sniff_delimiter

    assert sniff_delimiter("date,ticker,price") == ","
    assert sniff_delimiter('date,"ticker;name",price') == ","  # a comma file with a semicolon in a name
    assert sniff_delimiter('"Kurs, EUR";Datum;Ticker') == ";"  # a semicolon file with a comma in a name
    assert sniff_delimiter("date\tticker;x\tprice") == "\t"
    assert sniff_delimiter("price") == ","


def test_only_unambiguous_decimal_commas_become_numbers(tmp_path) -> None:
    from components.ingest.readers import parse_csv

    frame = parse_csv("date;ticker;price;volume;note\n"
                      "2021-01-04;1,5;1.234,50;12,5;a,b\n"
                      "2021-01-05;2,5;99,5;-3;x\n", "f.csv", keep_as_text=("ticker",))
    assert frame["ticker"].tolist() == ["1,5", "2,5"]  # kept as text: a ticker is a name
    assert frame["price"].tolist() == ["1.234,50", "99,5"]  # a thousands separator: left for validate to name
    assert frame["volume"].tolist() == [12.5, -3.0]
    assert frame["note"].tolist() == ["a,b", "x"]
    comma_file = parse_csv('date,ticker,price\n2021-01-04,A,"1,5"\n', "f.csv")
    assert comma_file["price"].tolist() == ["1,5"]  # in a comma file a quoted comma is not a decimal point


def test_a_streamed_semicolon_file_reads_as_the_whole_one(tmp_path) -> None:
    from components.ingest.readers import iter_csv, parse_csv

    big = pd.concat([FRAME.assign(ticker=f"T{i}") for i in range(200)], ignore_index=True)
    rows = (f"{d};{t};{str(p).replace('.', ',')}\n" for d, t, p in big.itertuples(index=False))
    text = "date;ticker;price\n" + "".join(rows)
    with io.BytesIO(text.encode()) as handle:
        batches = iter_csv(handle, "big.csv", "utf-8", ("ticker",), batch_rows=97, probe_bytes=256)
        assert batches is not None
        streamed = pd.concat(list(batches), ignore_index=True)
    pd.testing.assert_frame_equal(streamed, parse_csv(text, "big.csv", ("ticker",)))
    assert streamed["price"].tolist() == big["price"].tolist()
