"""The ``pricecast`` command line: a thin typer adapter over the cores.

Heavy imports (kfp, pandas, the server) happen inside the commands so ``pricecast --help`` is
instant. Command groups that belong to other concerns live in ``pricecast/cli_*.py`` modules,
each exposing ``register(app)``; this module only assembles them.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pricecast.errors import PricecastError

app = typer.Typer(
    name="pricecast",
    help="Train, gate, ship and watch a price-forecasting model (KFP v2, FastAPI, Helm).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Docstrings are the help text; Markdown shows their ``code`` as code instead of raw reST.
    rich_markup_mode="markdown",
)


def _hide_flag_types() -> None:
    """Show no ``<bool>`` after a flag: typer 0.29 prints one (``--verbose <bool>``), though a
    flag takes no value, and a newcomer types ``--verbose true``."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()
registry_app = typer.Typer(help="Inspect and change the model registry.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")

console = Console()
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


StoreOpt = Annotated[
    Optional[str],
    typer.Option("--store", help="Model store URL (file://DIR or s3://BUCKET/PREFIX); default PRICECAST_STORE_URL."),
]


# --------------------------------------------------------------------------- registry
@registry_app.command("list")
def registry_list(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the registry document as JSON.")] = False,
) -> None:
    """List every model version with its metrics and decision; mark the active one."""
    from pricecast.registry import RegistryStore

    try:
        registry_store = RegistryStore(store)
        reg = registry_store.load_existing()
    except PricecastError as exc:
        raise fail(exc) from exc
    if as_json:
        console.print_json(reg.model_dump_json())
        return
    console.print(f"store: {registry_store.store_url}", highlight=False, soft_wrap=True)
    # Fits 80 columns with whole version names: no vertical borders, no creation time (rows are
    # oldest first, a pipeline's version names its time, --json has it), identifiers never cut
    # (a name longer than the terminal folds onto a second line), and the reason wraps.
    table = Table(title=f"registry (revision {reg.revision}), oldest first", box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True)
    table.add_column("version", overflow="fold", min_width=max(map(len, reg.versions), default=7))
    for col in ("decision", "main metric"):
        table.add_column(col, no_wrap=True)
    table.add_column("reason", ratio=1, min_width=20)
    for mv in sorted(reg.versions.values(), key=lambda v: v.created_at):
        metric = mv.metrics.get(mv.main_metric)
        table.add_row(
            "*" if mv.version == reg.active else "",
            mv.version,
            mv.decision,
            f"{mv.main_metric}={metric:.4g}" if metric is not None else "-",
            mv.reason,
        )
    console.print(table)
    console.print(f"active: [bold]{reg.active or 'none'}[/]")


@registry_app.command("approve")
def registry_approve(
    version: Annotated[str, typer.Argument(help="A version whose decision is 'pending'.")],
    store: StoreOpt = None,
) -> None:
    """Approve a pending version (``--require-approval`` runs): it becomes active."""
    from pricecast import registry

    try:
        registry_store = registry.RegistryStore(store)
        registry_store.load_existing()
        reg = registry_store.update(lambda r: registry.approve(r, version))
    except PricecastError as exc:
        raise fail(exc) from exc
    console.print(f"store: {registry_store.store_url}", highlight=False, soft_wrap=True)
    console.print(f"approved {version}; active is now [bold]{reg.active}[/]")


@registry_app.command("rollback")
def registry_rollback(
    to: Annotated[Optional[str], typer.Option("--to", help="Version to activate; default: one step back in the activation history.")] = None,
    reason: Annotated[str, typer.Option(help="Why, recorded in the registry's event log.")] = "",
    store: StoreOpt = None,
) -> None:
    """Move the active pointer back (never rewrites a model); repeat to go further back."""
    from pricecast import registry

    try:
        registry_store = registry.RegistryStore(store)
        before = registry_store.load_existing().active
        reg = registry_store.update(lambda r: registry.rollback(r, to, reason))
    except PricecastError as exc:
        raise fail(exc) from exc
    console.print(f"store: {registry_store.store_url}", highlight=False, soft_wrap=True)
    console.print(f"active: {before} -> [bold]{reg.active}[/]")


# --------------------------------------------------------------------------- assembly
# Command groups owned by other concerns; each module exposes register(app).
_COMMAND_MODULES = (
    "pricecast.cli_pipeline",
    "pricecast.cli_data",
    "pricecast.cli_monitor",
    "pricecast.cli_serve",
    "pricecast.cli_canary",
    "pricecast.cli_kfp",
    "pricecast.cli_store",
)


def _register_command_modules() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_command_modules()


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except PricecastError as exc:
        sys.exit(fail(exc).exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "fail"]
