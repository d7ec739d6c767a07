"""``pricecast store init`` and ``pricecast store check``: the model store before the first run.

``init`` creates the bucket (or directory) the error messages point to; ``check`` proves, with
real calls, what every stage and the registry rely on: the store answers, the credentials can
write and delete, and stale conditional writes are refused (the registry's protection against
two runs promoting at once).
"""

from __future__ import annotations

import typer
from rich.console import Console

from cli.failures import fail
from cli.options import StoreOpt
from pricecast.errors import PricecastError, StorageError

console = Console()


def register(app: typer.Typer) -> None:
    """Add the ``store`` command group to the CLI."""
    store_app = typer.Typer(help="Create and check the model store.", no_args_is_help=True)
    app.add_typer(store_app, name="store")

    @store_app.command("init")
    def init(store: StoreOpt = None) -> None:
        """Create the store's bucket (S3) or directory (local) when it is missing."""
        from pricecast import storage
        from pricecast.settings import get_settings

        url = store or get_settings().store_url
        try:
            storage.ensure_bucket(url)
        except PricecastError as exc:
            raise fail(exc) from exc
        console.print(f"store ready: {url}")

    @store_app.command("check")
    def check(store: StoreOpt = None) -> None:
        """Reach the store, write and delete a probe, and check stale conditional writes are refused."""
        from pricecast import storage
        from pricecast.settings import get_settings

        url = store or get_settings().store_url
        try:
            honoured = storage.conditional_writes_honoured(url)
            if not honoured:
                raise StorageError(
                    f"The store at {url!r} accepted writes whose If-None-Match/If-Match condition was false, "
                    "so two runs promoting at the same moment could overwrite each other's registry update.",
                    "Use a store with S3 conditional writes (AWS S3, MinIO, a current SeaweedFS), or run one "
                    "pipeline at a time (`pricecast schedule` already allows one run at once).",
                )
        except PricecastError as exc:
            raise fail(exc) from exc
        console.print(f"store ok: {url} answers, accepts writes and deletes, and refuses stale "
                      "conditional writes (registry updates are safe with concurrent runs)")
