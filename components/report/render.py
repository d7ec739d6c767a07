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
DRIFT_HEADER = ["feature", "PSI", "level", "KS statistic", "KS p-value"]
NAIVE_COLOUR, CANDIDATE_COLOUR, WINDOW_COLOUR = "tab:orange", "tab:blue", "tab:red"
_CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
        "text-align:right}td:nth-child(-n+3),th{text-align:left}.promote{color:#0a6b2f}.reject,.alert{color:#a11}"
        "img{max-width:100%}code{background:#f4f4f4;padding:0 .2rem}")


def render_report(
    summary: Summary, gate: GateResult, model_info: Mapping[str, Any],
    alerts: Sequence[Alert] = (), limits: Thresholds | None = None,
    drift: Mapping[str, Any] | None = None,
) -> tuple[str, str, dict[str, bytes]]:
    """The report as Markdown, as self-contained HTML (PNGs embedded) and the PNGs themselves.

    Args:
        summary: From ``aggregate``.
        gate: From ``gate``.
        model_info: The train stage's JSON (``TrainInfo.to_dict()``).
        alerts: The candidate's accuracy alerts (``accuracy_alerts``), listed right after the verdict.
        limits: The accuracy limits they were checked against; None leaves the section out.
        drift: The drift stage's JSON report (score, level, per-feature PSI and KS, its alerts);
            None leaves the section out.

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
    drift_rows = _drift_rows(drift) if drift else []
    plotted = ", ".join(plot_tickers(summary))
    forecast_caption = (f"Forecast vs actual for {plotted}: the naive forecast (orange, wide) is the last price; "
                        "the candidate (blue) moves it by its predicted return, so the two lines nearly "
                        "coincide and the lower panel shows how far apart they are. Dashed red lines "
                        "separate the test windows (numbered at the top). Choose the tickers with the "
                        "report_tickers parameter.")

    md = [f"# {title}", "", f"**{verdict}.** {gate.reason}", ""]
    if limits is not None:
        md += ["## Alerts", "", _limits_sentence(alerts, limits), ""]
        md += [f"- {_alert_line(a)}" for a in alerts] + ([""] if alerts else [])
    md += ["## Metrics on the test windows", "", explain, "",
           "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(row) + " |" for row in table]
    if drift:
        md += ["", "## Drift", "", _drift_sentence(drift), "",
               "| " + " | ".join(DRIFT_HEADER) + " |", "|" + "---|" * len(DRIFT_HEADER)]
        md += ["| " + " | ".join(row) + " |" for row in drift_rows]
        md += [""] + [f"- {_alert_line(a)}" for a in _drift_alerts(drift)]
    md += ["", "## Model", ""] + [f"- **{k}**: {v}" for k, v in card] + ["", "## Plots", "",
           forecast_caption, "", f"![Forecast vs actual for {plotted}]({FORECAST_PLOT})", "",
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
    body += ["</table>"]
    if drift:
        body += ["<h2>Drift</h2>", f"<p>{esc(_drift_sentence(drift))}</p>",
                 "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in DRIFT_HEADER) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in drift_rows]
        body += ["</table>"]
        if _drift_alerts(drift):
            body.append("<ul>" + "".join(f'<li class="alert">{esc(_alert_line(a))}</li>'
                                         for a in _drift_alerts(drift)) + "</ul>")
    body += ["<h2>Model</h2>", "<ul>"]
    body += [f"<li><strong>{esc(k)}</strong>: {esc(v)}</li>" for k, v in card]
    body += ["</ul>", "<h2>Plots</h2>", f"<p>{esc(forecast_caption)}</p>"]
    body += [f'<p><img alt="{esc(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></p>'
             for name, png in plots.items()]
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")
    return "\n".join(md), page, plots


# --------------------------------------------------------------------------- pieces
def _limits_sentence(alerts: Sequence[Alert], limits: Thresholds) -> str:
    """Which absolute accuracy limits the candidate was held to, and what came of it."""
    parts = [f"directional accuracy at least {format_metric('directional_accuracy', limits.min_directional_accuracy)}"
             if limits.min_directional_accuracy is not None else "no minimum directional accuracy",
             f"MAPE at most {format_metric('mape', limits.max_mape)}" if limits.max_mape is not None
             else "no maximum MAPE"]
    outcome = (f"{len(alerts)} alert(s) raised (log, and the webhook when configured)" if alerts
               else "the candidate is within them, no alert")
    return f"Accuracy limits: {' and '.join(parts)}; {outcome}."


def _alert_line(alert: Alert | Mapping[str, Any]) -> str:
    get = alert.get if isinstance(alert, Mapping) else lambda key: getattr(alert, key)
    return f"{get('severity')} {get('name')}: {get('message')} What to do: {get('suggested_action')}"


def _drift_alerts(drift: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(drift.get("alerts") or [])


def _drift_sentence(drift: Mapping[str, Any]) -> str:
    """The drift stage's verdict on the data after training, against the training window."""
    thresholds = drift.get("thresholds") or {}
    alerts = _drift_alerts(drift)
    raised = (f"{len(alerts)} alert(s) raised (log, and the webhook when configured)" if alerts
              else "no alert")
    return (f"Input drift of the dates after training against the training window: score (largest PSI) "
            f"{_fixed(drift.get('score'), 4)}, level {str(drift.get('level', '?')).upper()} (PSI warn at "
            f"{thresholds.get('psi_warn', '?')}, alert at {thresholds.get('psi_alert', '?')}; KS flags p < "
            f"{thresholds.get('ks_p_value', '?')}); {raised}.")


def _drift_rows(drift: Mapping[str, Any]) -> list[list[str]]:
    features = sorted(drift.get("features") or [], key=lambda f: -(f.get("psi") or 0.0))
    return [[str(f.get("feature")), _fixed(f.get("psi"), 4),
             f"{f.get('level', '?')}{' (KS)' if f.get('ks_breach') else ''}",
             _fixed(f.get("ks_statistic"), 4), _p_value(f.get("ks_p_value"))] for f in features]


def _fixed(value: Any, decimals: int) -> str:
    return "n/a" if value is None else f"{float(value):.{decimals}f}"


def _p_value(value: Any) -> str:
    # p-values span many orders of magnitude: 3 significant digits in scientific notation.
    return "n/a" if value is None else f"{float(value):.3e}"


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


def plot_tickers(summary: Summary) -> list[str]:
    """The tickers the evaluate stage sampled for the plots, in the order it was given them."""
    return list(dict.fromkeys(t for w in summary.windows for t in w.samples))


def _fixed_margins(fig: Figure, *, left: float, right: float, top_in: float, bottom_in: float,
                   hspace: float = 0.2) -> None:
    """Margins set once (top and bottom in inches, so they hold for any number of tickers).

    Instead of ``layout="constrained"``, which measures every label in an extra draw: a third
    of the report's render time, for plots whose labels are the same every run.
    """
    height = fig.get_figheight()
    fig.subplots_adjust(left=left, right=right, top=1 - top_in / height, bottom=bottom_in / height, hspace=hspace)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _forecast_plot(summary: Summary) -> bytes:
    """Per ticker: prices with both forecasts, and below them the candidate's distance from naive.

    The candidate moves the last price by a predicted return of a fraction of a percent, so on a
    price axis it hides the naive line: naive is drawn wide and pale underneath, and the lower
    panel plots the gap that the eye cannot see above.
    """
    tickers = plot_tickers(summary)
    fig = Figure(figsize=(9, 3.6 * len(tickers)))
    _fixed_margins(fig, left=0.1, right=0.98, top_in=0.35, bottom_in=0.75)
    grid = fig.add_gridspec(len(tickers), 1, hspace=0.3)  # room for each ticker's title
    for i, ticker in enumerate(tickers):
        rows = [r for w in summary.windows for r in w.samples.get(ticker, [])]
        panels = grid[i].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.08)
        prices, gaps = fig.add_subplot(panels[0]), fig.add_subplot(panels[1])
        gaps.sharex(prices)
        dates = [r["date"] for r in rows]
        x = list(range(len(rows)))
        prices.plot(x, [r["naive"] for r in rows], color=NAIVE_COLOUR, linewidth=3.5, alpha=0.45,
                    label="naive forecast (last price)")
        prices.plot(x, [r["actual"] for r in rows], color="black", linewidth=1.1, label="actual next price")
        prices.plot(x, [r["forecast"] for r in rows], color=CANDIDATE_COLOUR, linewidth=1.0, label="candidate forecast")
        gaps.plot(x, [100 * (r["forecast"] - r["naive"]) / r["naive"] for r in rows], color=CANDIDATE_COLOUR,
                  linewidth=0.9)
        gaps.axhline(0, color=NAIVE_COLOUR, linewidth=1.5, alpha=0.7)
        gaps.set_ylabel("candidate\n− naive, %", fontsize="small")
        for number, w in enumerate(summary.windows):
            start = next((j for j, d in enumerate(dates) if d >= w.start), None)
            if start is None:
                continue
            if number:  # a boundary before every window but the first
                for ax in (prices, gaps):
                    ax.axvline(start - 0.5, color=WINDOW_COLOUR, linestyle="--", linewidth=0.9, alpha=0.7,
                               label="test window boundary" if ax is prices and number == 1 else None)
            prices.annotate(f"window {w.window_index}", (start, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -12), textcoords="offset points", fontsize="small", color=WINDOW_COLOUR)
        step = max(1, len(rows) // 6)
        gaps.set_xticks(x[::step], dates[::step])
        prices.tick_params(labelbottom=False)
        prices.set_title(f"{ticker}: next-period price forecast vs actual (test windows)")
        prices.set_ylabel("price")
        prices.legend(loc="best", fontsize="small")
    fig.supxlabel("forecast date")
    return _png(fig)


def _residual_plot(summary: Summary) -> bytes:
    residuals = [v for w in summary.windows for v in w.residuals_pct]
    fig = Figure(figsize=(6, 4))
    _fixed_margins(fig, left=0.12, right=0.97, top_in=0.35, bottom_in=0.55)
    ax = fig.add_subplot()
    ax.hist(residuals, bins=50, color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_title("Candidate errors on the test windows (sample)")
    ax.set_xlabel("(actual - forecast) / actual, %")
    ax.set_ylabel("rows")
    return _png(fig)
