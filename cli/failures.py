"""How a failure reaches the user: a PricecastError printed as problem and fix, then its exit code.

Every command module imports :func:`fail` from here (not from ``cli.app``, which imports the
command modules), so no command needs a function-level import to dodge an import cycle.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from pricecast.errors import PricecastError

err_console = Console(stderr=True)


def fail(exc: PricecastError) -> typer.Exit:
    """Print a PricecastError as the user should see it and turn it into an exit code."""
    # soft_wrap: the terminal wraps; rich would break store URLs and commands mid-way.
    err_console.print(f"[bold red]error:[/] {escape(exc.problem)}", soft_wrap=True, highlight=False)
    if exc.fix:
        err_console.print(f"[bold]what to do:[/] {escape(exc.fix)}", soft_wrap=True, highlight=False)
    return typer.Exit(code=exc.exit_code)


# Imported by kfp's client half only (kfp.Client, kfp.compiler, kfp.local, kfp.kubernetes); the
# pricecast image leaves them out (tools/image-exclude.txt).
KFP_CLIENT_MODULES = ("kfp_server_api", "kubernetes")


def require_kfp_client(command: str) -> None:
    """Raise a ConfigError for ``command`` where kfp's client half cannot be imported.

    That is the pricecast image: it runs pipeline tasks and the server, and ``compile``, ``run``,
    ``submit`` and ``schedule`` run from the project venv instead (Dockerfile.base says why).
    """
    import importlib.util
    import os

    from pricecast.errors import ConfigError

    missing = [name for name in KFP_CLIENT_MODULES if importlib.util.find_spec(name) is None]
    what = f"`pricecast {command}` needs the KFP client (kfp.compiler, kfp.local, kfp.Client)"
    if missing:
        raise ConfigError(
            f"{what}, which is not installed here (no {', '.join(missing)}): the pricecast image "
            "runs pipeline tasks and the model server only.",
            f"Run it from the project venv on your machine or in CI: `pip install -e .`, then `pricecast {command}`.",
        )
    if os.environ.get("_KFP_RUNTIME") == "true":
        raise ConfigError(f"{what}, which _KFP_RUNTIME=true turns off.",
                          "Unset _KFP_RUNTIME: KFP sets it for task processes only.")


__all__ = ["KFP_CLIENT_MODULES", "err_console", "fail", "require_kfp_client"]
