"""``pricecast serve``: run the model server (uvicorn + uvloop + httptools).

The options become ``PRICECAST_*`` environment variables before uvicorn starts, so every worker
process (uvicorn spawns them fresh) reads the same settings. With more than one worker the
metrics go through prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` is set
(to a fresh temporary directory unless given) before anything imports prometheus_client.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.failures import fail
from cli.options import StoreOpt
from pricecast.errors import ConfigError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_multiprocess_dir(workers: int) -> Path | None:
    """Point prometheus-client at a clean directory; return it when we created it (to remove)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # values of a previous run would be summed into ours
            stale.unlink()
        return None
    if workers == 1:
        return None
    created = Path(tempfile.mkdtemp(prefix="pricecast-metrics-"))
    os.environ[MULTIPROC_ENV] = str(created)
    return created


def _exit_after_graceful_shutdown(_signum: int, _frame: object) -> None:
    """uvicorn drains in-flight requests on SIGTERM, restores this handler and re-raises the
    signal; ending with ``SystemExit(0)`` here lets ``finally`` blocks run (the multiprocess
    metrics directory is removed) and reports the graceful stop as success."""
    raise SystemExit(0)


def serve(
    store: StoreOpt = None,
    version: Annotated[Optional[str], typer.Option(
        "--version", help="'active' or a version; default PRICECAST_MODEL_VERSION.")] = None,
    track: Annotated[Optional[str], typer.Option("--track", help="stable or canary; default PRICECAST_TRACK.")] = None,
    host: Annotated[Optional[str], typer.Option(
        "--host", help="Bind address; default PRICECAST_HOST (0.0.0.0).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Bind port; default PRICECAST_PORT (8080).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Worker processes; default PRICECAST_WORKERS (1).")] = None,
) -> None:
    """Serve the active (or a pinned) model version: /v1 and /v2 predict, /readyz, /metrics."""
    from pydantic import ValidationError

    from pricecast.settings import reload_settings

    for name, value in (("STORE_URL", store), ("MODEL_VERSION", version), ("TRACK", track),
                        ("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"PRICECAST_{name}"] = str(value)
    try:
        from serving.settings import ServerSettings

        log_level = reload_settings().log_level.lower()
        settings = ServerSettings()
    except ValidationError as exc:

        first = exc.errors()[0]
        raise fail(ConfigError(f"Invalid server setting {'.'.join(map(str, first['loc']))}: {first['msg']}.",
                               "Fix the option or the PRICECAST_* variable.")) from exc
    created = _prepare_multiprocess_dir(settings.workers)

    import uvicorn

    signal.signal(signal.SIGTERM, _exit_after_graceful_shutdown)
    try:
        uvicorn.run(
            "serving.main:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=settings.access_log,
            server_header=False,
            timeout_graceful_shutdown=settings.graceful_timeout_s,
            log_level=log_level,
        )
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def register(app: typer.Typer) -> None:
    """Add ``pricecast serve`` to the CLI."""
    app.command("serve")(serve)


def main() -> None:  # pragma: no cover - ``python -m cli.serve serve ...``
    standalone = typer.Typer(add_completion=False, no_args_is_help=True)

    @standalone.callback()
    def _group() -> None:
        """pricecast serve, without the rest of the CLI."""

    register(standalone)
    standalone()


if __name__ == "__main__":  # pragma: no cover
    main()
