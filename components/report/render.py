"""Render the evaluation report: verdict first, metrics, model card, plots; Markdown and one-file HTML.

Plots use matplotlib's Agg canvas directly (no pyplot): no global backend state, no display, safe
in a container or a server thread.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from components.report.summary import GateResult, Summary
from pricecast import frequency as freq
from pricecast.forecast_metrics import METRICS, ForecastMetrics, format_metric

if TYPE_CHECKING:
    from pricecast.monitoring.alerts import Alert
    from pricecast.monitoring.thresholds import Thresholds

FORECAST_PLOT = "forecast_vs_actual.png"
RESIDUAL_PLOT = "residuals.png"
HEADER = ["window", "dates", "forecaster", "rows", "MAE", "RMSE", "MAPE", "directional accuracy"]
_CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
        "text-align:right}td:nth-child(-n+3),th{text-align:left}.promote{color:#0a6b2f}.reject,.alert{color:#a11}"
        "img{max-width:100%}code{background:#f4f4f4;padding:0 .2rem}")


def render_report(
    summary: Summary, gate: GateResult, model_info: Mapping[str, Any],
    alerts: Sequence[Alert] = (), limits: Thresholds | None = None,
) -> tuple[str, str, dict[str, bytes]]:
    """The report as Markdown, as self-contained HTML (PNGs embedded) and the PNGs themselves.

    Args:
        summary: From ``aggregate``.
        gate: From ``gate``.
        model_info: The train stage's JSON (``TrainInfo.to_dict()``).
        alerts: The candidate's accuracy alerts (``accuracy_alerts``), listed right after the verdict.
        limits: The accuracy limits they were checked against; None leaves the section out.

    Returns:
        ``(markdown, html, {file name: png bytes})``; the Markdown links the PNGs by file name.
    """
    plots = {FORECAST_PLOT: _forecast_plot(summary), RESIDUAL_PLOT: _residual_plot(summary)}
    title = f"pricecast model report: {model_info.get('version', '?')}"
    verdict = f"Verdict: {gate.verdict.upper()}"
    table = _metric_rows(summary)
    card = _model_card(summary, gate, model_info)
    horizon = _horizon(model_info)
    explain = f"Price forecasts for the next {horizon}; lower is better except directional accuracy."

    md = [f"# {title}", "", f"**{verdict}.** {gate.reason}", ""]
    if limits is not None:
        md += ["## Alerts", "", _limits_sentence(alerts, limits), ""]
        md += [f"- {_alert_line(a)}" for a in alerts] + ([""] if alerts else [])
    md += ["## Metrics on the test windows", "", explain, "",
           "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(row) + " |" for row in table]
    md += ["", "## Model", ""] + [f"- **{k}**: {v}" for k, v in card] + ["", "## Plots", "",
           f"![Forecast vs actual for {_sample_ticker(summary)}]({FORECAST_PLOT})", "",
           f"![Candidate errors]({RESIDUAL_PLOT})", ""]

    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="{gate.verdict}"><strong>{esc(verdict)}.</strong> {esc(gate.reason)}</p>']
    if limits is not None:
        body += ["<h2>Alerts</h2>", f"<p>{esc(_limits_sentence(alerts, limits))}</p>"]
        if alerts:
            body.append("<ul>" + "".join(f'<li class="alert">{esc(_alert_line(a))}</li>' for a in alerts) + "</ul>")
    body += ["<h2>Metrics on the test windows</h2>",
             f"<p>{esc(explain)}</p>",
             "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADER) + "</tr>"]
    body += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table]
    body += ["</table>", "<h2>Model</h2>", "<ul>"]
    body += [f"<li><strong>{esc(k)}</strong>: {esc(v)}</li>" for k, v in card]
    body += ["</ul>", "<h2>Plots</h2>"]
    body += [f'<p><img alt="{esc(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></p>'
             for name, png in plots.items()]
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")
    return "\n".join(md), page, plots


# --------------------------------------------------------------------------- pieces
def _limits_sentence(alerts: Sequence[Alert], limits: Thresholds) -> str:
    """Which absolute accuracy limits the candidate was held to, and what came of it."""
    parts = [f"directional accuracy at least {limits.min_directional_accuracy:.1%}"
             if limits.min_directional_accuracy is not None else "no minimum directional accuracy",
             f"MAPE at most {limits.max_mape:.2f}%" if limits.max_mape is not None else "no maximum MAPE"]
    outcome = (f"{len(alerts)} alert(s) raised (log, and the webhook when configured)" if alerts
               else "the candidate is within them, no alert")
    return f"Accuracy limits: {' and '.join(parts)}; {outcome}."


def _alert_line(alert: Alert) -> str:
    return f"{alert.severity} {alert.name}: {alert.message} What to do: {alert.suggested_action}"


def _metric_row(window: str, dates: str, metrics: ForecastMetrics, version: str | None = None) -> list[str]:
    name = f"active ({version})" if metrics.name == "active" and version else metrics.name
    return [window, dates, name, f"{metrics.n:,}", *(format_metric(m, metrics.get(m)) for m in METRICS)]


def _metric_rows(summary: Summary) -> list[list[str]]:
    rows: list[list[str]] = []
    scopes = [(str(w.window_index), f"{w.start}..{w.end}", w.candidate, w.naive, w.active) for w in summary.windows]
    first, last = summary.windows[0].start, summary.windows[-1].end
    scopes.append(("all", f"{first}..{last}", summary.candidate, summary.naive, summary.active))
    for window, dates, *forecasters in scopes:
        rows += [_metric_row(window, dates, m, summary.active_version) for m in forecasters if m is not None]
    return rows


def _frequency(info: Mapping[str, Any]) -> freq.Frequency:
    """The model's frequency; models trained before it was recorded are business-daily."""
    return freq.parse(info.get("frequency")) or freq.Frequency.BUSINESS


def _horizon(info: Mapping[str, Any]) -> str:
    """What one step ahead is: a trading day, a day, a week, a month."""
    frequency = _frequency(info)
    return "trading day" if frequency is freq.Frequency.BUSINESS else freq.spacing(frequency).period


def _model_card(summary: Summary, gate: GateResult, info: Mapping[str, Any]) -> list[tuple[str, str]]:
    window = info.get("training_window", {})
    reference = f"active model {summary.active_version}" if gate.reference_kind == "active" else "naive forecast"
    return [
        ("version", str(info.get("version", "?"))),
        ("created", str(info.get("created_at", "?"))),
        ("gate", f"{gate.metric} vs {reference}, at most {gate.max_degradation:.0%} worse"),
        ("training window", f"{window.get('start', '?')} to {window.get('end', '?')} ({info.get('rows', 0):,} rows)"),
        ("frequency", freq.describe(_frequency(info))),
        ("model", f"StandardScaler + Ridge(alpha={info.get('alpha', '?')}) on the next {_horizon(info)}'s log return"),
        ("features", ", ".join(info.get("features", []))),
        ("data hash", f"sha256:{info.get('data_hash', '?')}"),
        ("model sha256", str(info.get("sha256", "?"))),
    ]


def _sample_ticker(summary: Summary) -> str:
    return summary.windows[0].sample_ticker


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _forecast_plot(summary: Summary) -> bytes:
    ticker = _sample_ticker(summary)
    rows = [r for w in summary.windows if w.sample_ticker == ticker for r in w.sample]
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    dates = [r["date"] for r in rows]
    x = range(len(rows))
    ax.plot(x, [r["actual"] for r in rows], color="black", linewidth=1.2, label="actual next price")
    ax.plot(x, [r["forecast"] for r in rows], color="tab:blue", linewidth=1, label="candidate forecast")
    ax.plot(x, [r["naive"] for r in rows], color="tab:gray", linewidth=0.8, linestyle=":",
            label="naive (last price)")
    for w in summary.windows[1:]:  # window boundaries
        if w.start in dates:
            ax.axvline(dates.index(w.start), color="tab:red", alpha=0.3, linewidth=0.8)
    step = max(1, len(rows) // 6)
    ax.set_xticks(list(x)[::step], dates[::step])
    ax.set_title(f"{ticker}: next-period price forecast vs actual (test windows)")
    ax.set_xlabel("forecast date")
    ax.set_ylabel("price")
    ax.legend(loc="best", fontsize="small")
    return _png(fig)


def _residual_plot(summary: Summary) -> bytes:
    residuals = [v for w in summary.windows for v in w.residuals_pct]
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(residuals, bins=50, color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_title("Candidate errors on the test windows (sample)")
    ax.set_xlabel("(actual - forecast) / actual, %")
    ax.set_ylabel("rows")
    return _png(fig)
