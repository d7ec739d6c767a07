"""The schema diff: what validate expected, what it found, and sample rows of every failed check.

One dict (JSON-serializable) serves three readers: the ``schema_diff`` artifact for machines,
:func:`render_markdown` for people (the ``schema_report`` artifact, ``pricecast validate``), and
the :class:`SchemaValidationError` raised with it, whose problem and fix come from it too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from pricecast.errors import SchemaValidationError
from pricecast.shard_profile import FREQUENCY, HISTORY, MIN_ROWS, TIME_SERIES, min_rows_fix, min_rows_summary

EXPECTED_DTYPES = {"date": "datetime64[ns]", "ticker": "str", "price": "float64"}
SAMPLE_ROWS = 10
ROW_NUMBERS = "Row numbers count data rows from 1; in a CSV file with a header, row N is on line N + 1."

# Check labels: pandera reports a check by its ``error`` text; the diff groups and explains by it.
REQUIRED_COLUMNS = "required columns present"
NOT_NULL = "no missing values"
TICKER_NOT_EMPTY = "ticker is not empty"
PRICE_NUMBER = "price is a number"
PRICE_POSITIVE = "price > 0"
PRICE_FINITE = "price is finite"
PRICE_RANGE = "price between 1e-300 and 1e300"
UNIQUE = "one price per (ticker, date): conflicting duplicate rows"
# Checks of what later stages need, run once the values are known good (their Failure carries
# its own summary and fix, with the numbers). They and the row count concern the whole table, so
# plan runs them again across shards: their labels and sentences are shared (pricecast.shard_profile).
FRAME_CHECKS = (UNIQUE, MIN_ROWS, TIME_SERIES, FREQUENCY, HISTORY)


@dataclasses.dataclass
class Failure:
    """One failed check: its label, the column it concerns ('' = whole row) and failing rows."""

    check: str
    column: str
    rows: np.ndarray  # 0-based positions in the raw frame
    summary: str = ""  # set by checks whose sentence needs their numbers; else derived
    fix: str = ""


def column_diff(raw: pd.DataFrame) -> dict[str, Any]:
    found = {str(c): str(t) for c, t in raw.dtypes.items()}
    return {
        "expected": dict(EXPECTED_DTYPES),
        "found": found,
        "missing": [c for c in EXPECTED_DTYPES if c not in found],
        "unexpected": [c for c in found if c not in EXPECTED_DTYPES],
    }


def _cell(value: Any) -> Any:
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    return str(value)


def _sample(raw: pd.DataFrame, failure: Failure) -> list[dict[str, Any]]:
    shown = [c for c in EXPECTED_DTYPES if c in raw.columns] or list(raw.columns[:6])
    return [
        {
            "row": int(r) + 1,
            "value": _cell(raw.at[r, failure.column]) if failure.column in raw.columns else None,
            "record": {c: _cell(raw.at[r, c]) for c in shown},
        }
        for r in failure.rows[:SAMPLE_ROWS]
    ]


def _fix(failure: Failure, raw: pd.DataFrame, min_rows: int) -> str:
    if failure.fix:
        return failure.fix
    label = failure.check
    if label.startswith("date parses"):
        example = _sample(raw, failure)[0]["value"] if failure.rows.size else "?"
        return (f"Pass --date-format (date_format) matching values like {example!r}, e.g. '%d/%m/%Y' "
                "for '31/01/2021' or '%b %d %Y' for 'Jan 31 2021', or fix those rows.")
    fixes = {
        NOT_NULL: f"Fill in or remove the rows with a missing {failure.column} at the source.",
        PRICE_NUMBER: "Make every price a plain number (no currency signs, thousands separators or text), "
                      "or remove those rows.",
        PRICE_POSITIVE: "Prices must be positive: fix or remove those rows (a 0 often marks a missing quote).",
        PRICE_FINITE: "Prices must be finite numbers: fix or remove those rows.",
        PRICE_RANGE: "Rescale the prices (e.g. divide by 1e6): the model works on returns, so units do not "
                     "matter, and prices beyond 1e300 or below 1e-300 overflow in price-space metrics.",
        TICKER_NOT_EMPTY: "Give every row a ticker.",
        UNIQUE: "Keep one price per (ticker, date): remove the conflicting duplicates at the source "
                "(exact duplicate rows are fine; clean drops them).",
        MIN_ROWS: min_rows_fix(len(raw), min_rows),
    }
    return fixes.get(label, "Fix the rows shown in the sample.")


def _summary(failure: Failure, rows: int, min_rows: int) -> str:
    if failure.summary:
        return failure.summary
    if failure.check == MIN_ROWS:
        return min_rows_summary(rows, min_rows)
    where = f"{failure.column}: " if failure.column else ""
    return f"{where}{failure.check} failed on {failure.rows.size} row(s)"


def _dtype_status(column: str, raw: pd.DataFrame, failures: list[Failure], missing: list[str]) -> str:
    if column not in raw.columns:
        return "missing"
    if missing:
        return "present (values not checked while a column is missing)"
    unparsed = sum(f.rows.size for f in failures
                   if f.column == column and (f.check == PRICE_NUMBER or f.check.startswith("date parses")))
    if unparsed:
        return f"{unparsed} value(s) do not parse"
    return "ok" if str(raw[column].dtype) == EXPECTED_DTYPES[column] else f"parsed to {EXPECTED_DTYPES[column]}"


def build(raw: pd.DataFrame, columns: dict[str, Any], failures: list[Failure], notes: list[str],
          min_rows: int, date_format: str, frequency: str = "") -> dict[str, Any]:
    """The schema diff of ``raw``; ``valid`` is False when a column is missing or a check failed.

    ``frequency`` is the data's frequency once known ('' while the values do not check out).
    """
    rows = len(raw)
    checks = [
        {"check": f.check, "column": f.column, "failing_rows": int(f.rows.size),
         "summary": _summary(f, rows, min_rows), "fix": _fix(f, raw, min_rows), "sample": _sample(raw, f)}
        for f in failures
    ]
    if columns["missing"]:
        found = ", ".join(columns["found"]) or "no columns"
        checks.insert(0, {
            "check": REQUIRED_COLUMNS, "column": ", ".join(columns["missing"]), "failing_rows": rows,
            "summary": f"missing column(s) {', '.join(columns['missing'])} (the source has: {found})",
            "fix": "Map the source's columns with --date-column, --ticker-column and --price-column "
                   f"(date_column, ... in a config or pipeline parameters); the source has: {found}.",
            "sample": [],
        })
    failing = np.unique(np.concatenate([f.rows for f in failures])) if failures else np.empty(0)
    diff: dict[str, Any] = {
        "valid": not checks,
        "schema": "prices",
        "rows": {"found": rows, "min_rows": min_rows, "failing": int(failing.size)},
        "columns": columns,
        "dtypes": [{"column": c, "expected": t, "found": columns["found"].get(c),
                    "status": _dtype_status(c, raw, failures, columns["missing"])}
                   for c, t in EXPECTED_DTYPES.items()],
        "checks": checks,
        "warnings": list(notes),
        "date_format": date_format or "ISO 8601, else one inferred format",
        "frequency": frequency or None,
        "row_numbers": ROW_NUMBERS,
    }
    if columns["missing"]:
        diff["head"] = [{str(c): _cell(v) for c, v in rec.items()} for rec in raw.head(3).to_dict("records")]
    if checks:
        diff["problem"] = "The data does not match the price schema: " + "; ".join(c["summary"] for c in checks) + "."
        diff["fix"] = " ".join(dict.fromkeys(c["fix"] for c in checks))
    return diff


def to_error(diff: dict[str, Any]) -> SchemaValidationError:
    return SchemaValidationError(diff["problem"], diff["fix"], diff=diff)


# --------------------------------------------------------------------------- Markdown
def _md(value: Any) -> str:
    text = "∅ (missing)" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ") or "''"


def render_markdown(diff: dict[str, Any]) -> str:
    """The diff as a Markdown report a person reads (artifact, file, terminal)."""
    rows = diff["rows"]
    verdict = "PASSED" if diff["valid"] else "FAILED"
    out = [f"# Schema check: {verdict}", "",
           f"**Rows:** {rows['found']:,} found (minimum {rows['min_rows']:,}); **failing rows:** {rows['failing']:,}; "
           f"**date format:** `{diff['date_format']}`"
           + (f"; **frequency:** {diff['frequency']}" if diff.get("frequency") else ""), ""]
    if not diff["valid"]:
        out += [f"**Problem:** {diff['problem']}", "", f"**What to do:** {diff['fix']}", ""]
    out += ["## Columns", "", "| column | expected | found | status |", "|---|---|---|---|"]
    for entry in diff["dtypes"]:
        cells = (entry["column"], entry["expected"], entry["found"] or "—", entry["status"])
        out.append("| " + " | ".join(map(_md, cells)) + " |")
    for column in diff["columns"]["unexpected"]:
        out.append(f"| {_md(column)} | — | {_md(diff['columns']['found'][column])} | not in the schema (dropped) |")
    if diff.get("head"):
        shown = list(diff["head"][0])
        out += ["", "First rows as read:", "", "| " + " | ".join(map(_md, shown)) + " |", "|" + "---|" * len(shown)]
        out += ["| " + " | ".join(_md(rec.get(c)) for c in shown) + " |" for rec in diff["head"]]
    if diff["checks"]:
        out += ["", "## Failed checks"]
    for check in diff["checks"]:
        out += ["", f"### {_md(check['check'])}" + (f" — `{check['column']}`" if check["column"] else ""), "",
                f"{check['summary']}. {check['fix']}"]
        if check["sample"]:
            fields = list(check["sample"][0]["record"])
            out += ["", "| row | " + " | ".join(map(_md, fields)) + " |", "|---|" + "---|" * len(fields)]
            out += ["| " + " | ".join([str(s["row"]), *(_md(s["record"][f]) for f in fields)]) + " |"
                    for s in check["sample"]]
            if check["failing_rows"] > len(check["sample"]):
                out.append(f"\n({check['failing_rows'] - len(check['sample']):,} more failing rows not shown)")
    if diff["warnings"]:
        out += ["", "## Warnings", ""] + [f"- {w}" for w in diff["warnings"]]
    out += ["", f"_{diff['row_numbers']}_", ""]
    return "\n".join(out)


__all__ = ["EXPECTED_DTYPES", "FREQUENCY", "HISTORY", "MIN_ROWS", "TIME_SERIES", "Failure", "build", "column_diff", "render_markdown", "to_error"]
