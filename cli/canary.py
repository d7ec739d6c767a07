"""``pricecast canary start|promote|rollback|analyze``: the canary workflow from the command line.

start/promote/rollback write a Helm values overlay (and apply it with ``helm upgrade`` when a
``helm`` binary can see the release); analyze asks Prometheus and exits with the verdict's code
(0 promote, 1 rollback, 75 inconclusive; see docs/delivery.md).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from rich.console import Console

from cli.failures import fail
from cli.options import StoreOpt
from pricecast.errors import ConfigError, PricecastError

console = Console()
canary_app = typer.Typer(help="Canary releases on Kubernetes: start, analyze, promote, roll back.",
                         no_args_is_help=True)

DEFAULT_VALUES_FILE = Path(".pricecast/canary/values.yaml")


class ApplyMode(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


ValuesFileOpt = Annotated[Path, typer.Option("--values-file", help="Where the values overlay is written (and the canary version recorded).")]
ReleaseOpt = Annotated[str, typer.Option("--release", help="Helm release name.")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Kubernetes namespace of the release.")]
ChartOpt = Annotated[str, typer.Option("--chart", help="Chart path or reference for helm upgrade.")]
ApplyOpt = Annotated[ApplyMode, typer.Option("--apply", help="auto: run helm upgrade when helm can see the release; always; never.")]
TimeoutOpt = Annotated[str, typer.Option("--timeout", help="helm upgrade --wait timeout.")]


def parse_seconds(text: str) -> float:
    """``"30s"``, ``"2m"``, ``"500ms"`` or a bare number of seconds -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise ConfigError(f"{text!r} is not a duration.", "Use a number with ms, s, m or h, e.g. 30s.")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return float(match.group(1)) * scale


def _apply(overlay_values: dict[str, Any], summary: str, values_file: Path, release: str, namespace: str,
           chart: str, apply: ApplyMode, timeout: str) -> None:
    from pricecast.canary import release as rel

    values_file.parent.mkdir(parents=True, exist_ok=True)
    values_file.write_text("# Written by `pricecast canary`; apply with helm upgrade --reuse-values -f.\n"
                           + yaml.safe_dump(overlay_values, sort_keys=False), encoding="utf-8")
    console.print(f"{summary}\nvalues: [bold]{values_file}[/]", soft_wrap=True)
    command = rel.helm_upgrade_command(release, chart, namespace, str(values_file), timeout)
    if apply is ApplyMode.never or (apply is ApplyMode.auto and not rel.helm_available(release, namespace)):
        console.print("apply with: " + shlex.join(command), soft_wrap=True, markup=False)
        return
    console.print("running: " + shlex.join(command), soft_wrap=True, markup=False)
    try:
        done = subprocess.run(command, check=False)
    except FileNotFoundError:
        raise ConfigError("--apply always needs a helm binary on PATH.", "Install helm 3.14+ or use --apply never.") from None
    if done.returncode != 0:
        raise PricecastError(f"helm upgrade failed with exit code {done.returncode}.",
                             "Read helm's message above; `helm history` shows the releases, `helm rollback` restores one.")


def _pinned(version: str, store: str | None) -> str:
    """``version``, with ``active`` resolved in the registry now: the pod template gets a concrete
    version, so every pod of the track serves it and a later registry change does not leak in."""
    if version != "active":
        return version
    from pricecast.registry import RegistryStore

    pinned = RegistryStore(store).load_existing().resolve("active").version
    console.print(f"active is {pinned}: pinning it", soft_wrap=True, markup=False)
    return pinned


def _recorded_canary_version(values_file: Path) -> str:
    if not values_file.exists():
        return ""
    data = yaml.safe_load(values_file.read_text(encoding="utf-8")) or {}
    return str((data.get("canary") or {}).get("modelVersion") or "")


CHART_DEFAULT_STABLE_REPLICAS = 2


def _stable_replicas(values_file: Path, release: str, namespace: str) -> tuple[int, str]:
    """How many stable pods the release runs, and where that number came from."""
    from pricecast.canary import release as rel

    from_helm = rel.helm_stable_replicas(release, namespace)
    if from_helm is not None:
        return from_helm, "helm get values"
    if values_file.exists():
        recorded = ((yaml.safe_load(values_file.read_text(encoding="utf-8")) or {}).get("stable") or {}).get("replicaCount")
        if recorded:
            return int(recorded), str(values_file)
    return CHART_DEFAULT_STABLE_REPLICAS, "the chart default"


@canary_app.command("start")
def start(
    version: Annotated[str, typer.Option("--version", help="Registry version the canary serves; 'active' is resolved to the version it names now.")],
    weight: Annotated[int, typer.Option("--weight", help="Percent of traffic for the canary (1-99).")] = 10,
    stable_replicas: Annotated[Optional[int], typer.Option("--stable-replicas", help="Scale stable to this many pods and size the canary for it (default: keep stable as it is).")] = None,
    values_file: ValuesFileOpt = DEFAULT_VALUES_FILE,
    release: ReleaseOpt = "pricecast",
    namespace: NamespaceOpt = "pricecast",
    chart: ChartOpt = "helm/pricecast",
    apply: ApplyOpt = ApplyMode.auto,
    timeout: TimeoutOpt = "5m",
    store: StoreOpt = None,
) -> None:
    """Deploy VERSION as a canary next to stable with WEIGHT % of the traffic.

    VERSION must be in the registry and not rejected; nothing is written otherwise.
    """
    from pricecast.canary import release as rel
    from pricecast.registry import RegistryStore

    try:
        version = _pinned(version, store)
        if stable_replicas is not None:
            overlay = rel.start(version, weight, stable_replicas, scale_stable=True)
        else:
            current, source = _stable_replicas(values_file, release, namespace)
            overlay = rel.start(version, weight, current)
            overlay = rel.Overlay(overlay.values, f"{overlay.summary} (stable pods from {source})")
        # Before any values are written: a typo or a rejected model must not reach the release.
        RegistryStore(store).load_existing().servable(version)
        _apply(overlay.values, overlay.summary, values_file, release, namespace, chart, apply, timeout)
    except PricecastError as exc:
        raise fail(exc) from exc


@canary_app.command("promote")
def promote(
    version: Annotated[Optional[str], typer.Option("--version", help="The canary's version ('active' is resolved); default: the one `canary start` recorded.")] = None,
    values_file: ValuesFileOpt = DEFAULT_VALUES_FILE,
    release: ReleaseOpt = "pricecast",
    namespace: NamespaceOpt = "pricecast",
    chart: ChartOpt = "helm/pricecast",
    apply: ApplyOpt = ApplyMode.auto,
    timeout: TimeoutOpt = "5m",
    store: StoreOpt = None,
) -> None:
    """Make the canary's version stable and remove the canary track.

    The version must be in the registry and not rejected, as for `canary start`: nothing is
    written otherwise.
    """
    from pricecast.canary import release as rel
    from pricecast.registry import RegistryStore

    try:
        version = _pinned(version or _recorded_canary_version(values_file), store)
        overlay = rel.promote(version)
        # Before any values are written: a rejected model must not become stable either.
        RegistryStore(store).load_existing().servable(version)
        _apply(overlay.values, overlay.summary, values_file, release, namespace, chart, apply, timeout)
    except PricecastError as exc:
        raise fail(exc) from exc


@canary_app.command("rollback")
def rollback(
    values_file: ValuesFileOpt = DEFAULT_VALUES_FILE,
    release: ReleaseOpt = "pricecast",
    namespace: NamespaceOpt = "pricecast",
    chart: ChartOpt = "helm/pricecast",
    apply: ApplyOpt = ApplyMode.auto,
    timeout: TimeoutOpt = "5m",
) -> None:
    """Remove the canary track; stable keeps serving its model."""
    from pricecast.canary import release as rel

    try:
        overlay = rel.rollback()
        _apply(overlay.values, overlay.summary, values_file, release, namespace, chart, apply, timeout)
    except PricecastError as exc:
        raise fail(exc) from exc


@canary_app.command("analyze")
def analyze(
    prometheus: Annotated[str, typer.Option("--prometheus", help="Prometheus base URL, e.g. http://localhost:9090.")],
    version: Annotated[Optional[str], typer.Option("--version", help="The canary's model version: only its traffic counts; default: the one `canary start` recorded.")] = None,
    values_file: ValuesFileOpt = DEFAULT_VALUES_FILE,
    window: Annotated[str, typer.Option("--window", help="Traffic window of each check (PromQL duration).")] = "5m",
    interval: Annotated[str, typer.Option("--interval", help="Time between checks.")] = "30s",
    checks: Annotated[int, typer.Option("--checks", help="Checks in a full run.")] = 5,
    failure_threshold: Annotated[int, typer.Option("--failure-threshold", help="Failed checks that trigger rollback.")] = 2,
    min_success_rate: Annotated[float, typer.Option("--min-success-rate", help="Lowest share of non-5xx predict responses.")] = 0.99,
    max_p99_ms: Annotated[float, typer.Option("--max-p99-ms", help="Highest canary p99 latency, ms.")] = 250.0,
    min_requests: Annotated[int, typer.Option("--min-requests", help="Fewest canary predict requests per window for a check to count.")] = 50,
    max_p99_ratio: Annotated[Optional[float], typer.Option("--max-p99-ratio", help="Also fail when canary p99 > this x stable p99.")] = None,
    selector: Annotated[str, typer.Option("--selector", help='Extra label matchers, e.g. namespace="prod",job="pricecast".')] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
) -> None:
    """Compare canary with stable in Prometheus and exit with the verdict.

    Exit codes: 0 promote, 1 roll back, 75 inconclusive (too little traffic: analyze again),
    2 bad options, 3 Prometheus unreachable or not Prometheus (after retries).
    """
    from pricecast.canary import analysis, report
    from pricecast.canary.prometheus import PrometheusClient

    try:
        canary_version = version or _recorded_canary_version(values_file)
        if not canary_version:
            raise ConfigError(f"canary analyze needs the canary's model version, and {values_file} records none.",
                              "Pass --version V (the version `pricecast canary start --version V` deployed).")
        try:
            policy = analysis.Policy(canary_version=canary_version, window=window, interval_s=parse_seconds(interval), checks=checks,
                                     failure_threshold=failure_threshold, min_success_rate=min_success_rate,
                                     max_p99_s=max_p99_ms / 1000, min_requests=min_requests,
                                     max_p99_ratio=max_p99_ratio, selector=selector)
        except ValueError as exc:
            raise ConfigError(str(exc), "See `pricecast canary analyze --help`.") from None
        client = PrometheusClient(prometheus)
        on_check = None if as_json else (
            lambda n, c: console.print(report.check_line(n, policy.checks, c), soft_wrap=True, markup=False))
        result = analysis.run(policy, client.query, time.sleep, on_check)
    except PricecastError as exc:
        raise fail(exc) from exc
    if as_json:
        print(json.dumps(report.as_dict(result), indent=2))
    else:
        console.print(report.summary(result), soft_wrap=True, markup=False)
    raise typer.Exit(code=analysis.EXIT_CODES[result.verdict])


def register(app: typer.Typer) -> None:
    """Add the ``canary`` command group to the pricecast CLI."""
    app.add_typer(canary_app, name="canary")
