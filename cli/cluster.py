"""``pricecast submit`` and ``pricecast schedule``: the compiled pipeline on a KFP cluster.

Both talk to the KFP API with ``kfp.Client``: upload the compiled YAML as a pipeline (or, when a
pipeline of that name exists, as a new version of it; an identical package is never uploaded
twice), make sure the experiment exists, then start one run or create a recurring run. Store
location and credentials are not parameters: the cluster's ConfigMap and Secret supply them
(``k8s/pipeline/``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from cli.failures import fail, require_kfp_client
from pricecast.errors import ConfigError, KfpApiError, KfpRejectedError, PricecastError

console = Console()

DEFAULT_PIPELINE = "pricecast"
DEFAULT_EXPERIMENT = "pricecast"


def kfp_cron(expression: str) -> str:
    """KFP's 6-field cron (seconds first) from a standard 5-field one; 6 fields pass through.

    KFP schedules with robfig/cron *with* a seconds field, so the familiar ``0 2 * * *`` would
    mean "at second 0 of minute 2 of every hour". We accept the familiar form and prepend "0".
    """
    fields = expression.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise ConfigError(
        f"Cron expression {expression!r} has {len(fields)} fields.",
        'Use 5 fields (minute hour day month weekday, e.g. "0 2 * * *" for 02:00 nightly) '
        "or KFP's 6 (with seconds first).",
    )


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to pipeline parameters; values are YAML scalars (20, 0.1, true, text)."""
    import yaml

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {pair!r} is not KEY=VALUE.", "Example: --param tickers=50")
        params[key.strip().replace("-", "_")] = yaml.safe_load(value) if value else ""
    return params


@dataclasses.dataclass(frozen=True)
class Uploaded:
    """The pipeline version a run or schedule uses."""

    pipeline_id: str
    version_id: str
    version_name: str
    new: bool


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


def connect(host: str, namespace: str | None = None, token: str | None = None) -> Any:
    """A ``kfp.Client`` for ``host``; an unreachable API becomes a PricecastError."""
    import warnings

    # From its module, not ``kfp.Client``: pipelines/__init__.py imports kfp without its client.
    from kfp.client import Client

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0-beta.2"
        try:
            return Client(host=host, namespace=namespace or "kubeflow", existing_token=token)
        except Exception as exc:  # noqa: BLE001 - urllib3/ApiException/TimeoutError alike
            raise api_error(host, "reach", exc) from exc


def backend_message(body: object) -> str:
    """The KFP API server's own sentence from an error response body.

    Its errors are google.rpc.Status as JSON (``message``; KFP's v1 API also sent
    ``error_message``); anything else (a proxy's HTML page, plain text) is returned as it came.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())
    if isinstance(data, dict):
        for key in ("message", "error_message", "error"):
            if data.get(key):
                return " ".join(str(data[key]).split())
    return " ".join(text.split())


def api_error(host: str, action: str, exc: BaseException) -> KfpApiError:
    """What went wrong talking to KFP at ``host`` (while trying to ``action`` it), and the fix for that case.

    No HTTP status means nothing answered (wrong host, no port-forward). With one, the backend's
    own message is the problem, and the fix depends on who must act: 401/403 the credentials,
    404 the host or the id, another 4xx the request itself (the package or a parameter), 5xx the
    cluster.
    """
    status = getattr(exc, "status", None)
    if not status:
        return KfpApiError(
            f"Could not {action} the KFP API at {host} ({' '.join(str(exc).split())}).",
            "Check --host (e.g. http://localhost:8080 with `kubectl port-forward -n kubeflow "
            "svc/ml-pipeline-ui 8080:80` running) and, on a multi-user install, --namespace/--token.",
        )
    message = backend_message(getattr(exc, "body", None)) or str(getattr(exc, "reason", "") or "no message")
    said = f"(HTTP {status}) when asked to {action} it: {message}"
    if status in (401, 403):
        return KfpRejectedError(f"The KFP API at {host} refused access {said}",
                                "Pass a token the cluster accepts (--token or KFP_TOKEN) and, on a "
                                "multi-user install, your profile's --namespace.")
    if status == 404:
        return KfpRejectedError(f"The KFP API at {host} found nothing {said}",
                                "Check that --host is KFP's UI or API (not another service on that "
                                "port) and that the run or pipeline id you passed exists there.")
    if status < 500:
        return KfpRejectedError(f"The KFP backend at {host} rejected the request {said}",
                                "Fix what the backend names. A package it cannot read usually needs "
                                "compiling again with this project's SDK for the cluster's KFP "
                                "(`pricecast compile --image REPO:TAG`); a bad value, the --param or "
                                "--config that set it.")
    return KfpApiError(f"The KFP API at {host} failed {said}",
                       "The cluster side broke, not the request: read the API server's log "
                       "(`kubectl -n kubeflow logs deploy/ml-pipeline`) and retry once it is healthy.")


def upload(client: Any, package: Path, pipeline_name: str, description: str = "") -> Uploaded:
    """Upload ``package`` as pipeline ``pipeline_name``, or as a new version when it exists.

    The version is named after the package's sha256, so submitting an unchanged package again
    reuses the version instead of piling up copies.
    """
    digest = hashlib.sha256(package.read_bytes()).hexdigest()[:12]
    version_name = f"{pipeline_name}-{digest}"
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(str(package), pipeline_name=pipeline_name, description=description)
        versions = client.list_pipeline_versions(pipeline.pipeline_id, page_size=1, sort_by="created_at desc")
        version = versions.pipeline_versions[0]
        return Uploaded(pipeline.pipeline_id, version.pipeline_version_id, version.display_name, True)
    existing = client.list_pipeline_versions(pipeline_id, page_size=1, filter=_equals("display_name", version_name))
    if existing.pipeline_versions:
        version = existing.pipeline_versions[0]
        return Uploaded(pipeline_id, version.pipeline_version_id, version_name, False)
    version = client.upload_pipeline_version(str(package), pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id, description=description)
    return Uploaded(pipeline_id, version.pipeline_version_id, version_name, True)


def _package(path: Path | None) -> Path:
    if path is None:
        from importlib.resources import files

        path = Path(str(files("pipelines") / "pricecast_pipeline.yaml"))
    if not path.is_file():
        raise ConfigError(f"Pipeline package {path} does not exist.",
                          "Compile it first: `pricecast compile --image REPO:TAG`.")
    return path


def _params(config: Path | None, pairs: list[str]) -> dict[str, Any]:
    from cli.pipeline import load_run_config
    from pipelines.parameters import check_arguments

    params = {**load_run_config(config), **parse_params(pairs)}
    check_arguments(params)
    return params


HostOpt = Annotated[str, typer.Option("--host", envvar="KF_PIPELINES_ENDPOINT",
                                      help="KFP API URL, e.g. http://localhost:8080 (port-forwarded ml-pipeline-ui).")]
PackageOpt = Annotated[Optional[Path], typer.Option("--package", help="Compiled pipeline YAML; default pipelines/pricecast_pipeline.yaml.")]
PipelineOpt = Annotated[str, typer.Option("--pipeline-name", help="Pipeline name in KFP.")]
ExperimentOpt = Annotated[str, typer.Option("--experiment", help="Experiment the runs belong to (created if missing).")]
ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", help="Pipeline parameter KEY=VALUE; repeatable.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML or TOML file of pipeline parameters.")]
NamespaceOpt = Annotated[Optional[str], typer.Option("--namespace", help="Profile namespace (multi-user KFP only).")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", envvar="KFP_TOKEN", help="Bearer token, when the API needs one.")]
AccountOpt = Annotated[Optional[str], typer.Option("--service-account", help="Kubernetes service account of the run's pods (e.g. pricecast-pipeline from k8s/pipeline).")]
RootOpt = Annotated[Optional[str], typer.Option("--pipeline-root", help="Where KFP keeps the run's artifacts; default the cluster's (minio://mlpipeline/v2/artifacts on KFP's SeaweedFS).")]


def register(app: typer.Typer) -> None:
    """Add ``submit`` and ``schedule`` to the CLI."""

    @app.command("submit")
    def submit(host: HostOpt, package: PackageOpt = None, pipeline_name: PipelineOpt = DEFAULT_PIPELINE,
               experiment: ExperimentOpt = DEFAULT_EXPERIMENT, param: ParamOpt = None, config: ConfigOpt = None,
               run_name: Annotated[Optional[str], typer.Option(help="Run name; default <pipeline>-<version>.")] = None,
               namespace: NamespaceOpt = None, token: TokenOpt = None, service_account: AccountOpt = None,
               pipeline_root: RootOpt = None) -> None:
        """Upload the compiled pipeline (a new version if it exists) and start a run on KFP."""

        try:
            require_kfp_client("submit")
            path, params = _package(package), _params(config, param or [])
            client = connect(host, namespace, token)
            with _quiet(host, "submit to"):
                uploaded = upload(client, path, pipeline_name)
                exp = client.create_experiment(experiment, namespace=namespace)
                run = client.run_pipeline(exp.experiment_id, run_name or uploaded.version_name, params=params,
                                          pipeline_id=uploaded.pipeline_id, version_id=uploaded.version_id,
                                          service_account=service_account, pipeline_root=pipeline_root)
        except PricecastError as exc:
            raise fail(exc) from exc
        _report(host, uploaded)
        console.print(f"run [bold]{run.run_id}[/] started: {host.rstrip('/')}/#/runs/details/{run.run_id}")

    @app.command("schedule")
    def schedule(host: HostOpt,
                 cron: Annotated[str, typer.Option(help='When, as cron: "0 2 * * *" is 02:00 nightly (KFP\'s 6-field form works too).')] = "0 2 * * *",
                 name: Annotated[str, typer.Option(help="Recurring run name; an existing one of that name is replaced.")] = "pricecast-nightly",
                 package: PackageOpt = None, pipeline_name: PipelineOpt = DEFAULT_PIPELINE,
                 experiment: ExperimentOpt = DEFAULT_EXPERIMENT, param: ParamOpt = None, config: ConfigOpt = None,
                 namespace: NamespaceOpt = None, token: TokenOpt = None, service_account: AccountOpt = None,
                 pipeline_root: RootOpt = None) -> None:
        """Create a recurring run (nightly by default) of the compiled pipeline on KFP."""

        try:
            require_kfp_client("schedule")
            path, params, kfp_expr = _package(package), _params(config, param or []), kfp_cron(cron)
            client = connect(host, namespace, token)
            with _quiet(host, "schedule on"):
                uploaded = upload(client, path, pipeline_name)
                exp = client.create_experiment(experiment, namespace=namespace)
                old = client.list_recurring_runs(experiment_id=exp.experiment_id, filter=_equals("display_name", name))
                for previous in old.recurring_runs or []:
                    client.delete_recurring_run(previous.recurring_run_id)
                job = client.create_recurring_run(
                    exp.experiment_id, name, cron_expression=kfp_expr, params=params,
                    pipeline_id=uploaded.pipeline_id, version_id=uploaded.version_id,
                    max_concurrency=1, no_catchup=True, enabled=True, service_account=service_account,
                    pipeline_root=pipeline_root,
                )
        except PricecastError as exc:
            raise fail(exc) from exc
        _report(host, uploaded)
        verb = "replaced" if old.recurring_runs else "created"
        console.print(f"recurring run [bold]{name}[/] {verb} ({job.recurring_run_id}): cron '{kfp_expr}' (KFP form)")


@contextlib.contextmanager
def _quiet(host: str, action: str):
    """Keep kfp.Client's own 'details: <link>' prints out of our output; map API errors."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    except PricecastError:
        raise
    except Exception as exc:  # noqa: BLE001 - kfp_server_api.ApiException, urllib3 errors
        raise api_error(host, action, exc) from exc


def _report(host: str, uploaded: Uploaded) -> None:
    state = "uploaded" if uploaded.new else "unchanged, reused"
    console.print(f"pipeline version [bold]{uploaded.version_name}[/] ({state}): "
                  f"{host.rstrip('/')}/#/pipelines/details/{uploaded.pipeline_id}/version/{uploaded.version_id}")
