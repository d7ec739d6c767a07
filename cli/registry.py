"""``pricecast registry list|approve|rollback|resolve``: inspect and move the registry's active pointer."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from cli.failures import fail
from cli.options import StoreOpt
from pricecast.errors import PricecastError

console = Console()
registry_app = typer.Typer(help="Inspect and change the model registry.", no_args_is_help=True)


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


@registry_app.command("resolve")
def registry_resolve(
    version: Annotated[str, typer.Argument(help="'active' or a version to check.")] = "active",
    store: StoreOpt = None,
) -> None:
    """Print the concrete version VERSION names now, e.g. to pin a deployment to the active model.

    helm install ... --set stable.modelVersion="$(pricecast registry resolve active)"
    """
    from pricecast.registry import RegistryStore

    try:
        print(RegistryStore(store).load().resolve(version).version)
    except PricecastError as exc:
        raise fail(exc) from exc


def register(app: typer.Typer) -> None:
    """Add the ``registry`` command group to the CLI."""
    app.add_typer(registry_app, name="registry")


__all__ = ["register", "registry_app"]
