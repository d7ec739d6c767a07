"""The ``pricecast`` command line: a thin typer adapter over the cores.

Heavy imports (kfp, pandas, the server) happen inside the commands so ``pricecast --help`` is
instant. Each command group lives in its own ``cli/<group>.py`` module exposing
``register(app)``; this module only assembles them.
"""

from __future__ import annotations

import sys

import typer

from cli import canary, cluster, data, monitor, pipeline, registry, serve, store
from cli.failures import fail
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

# The order commands appear in ``pricecast --help``.
for _group in (registry, pipeline, data, monitor, serve, canary, cluster, store):
    _group.register(app)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except PricecastError as exc:
        sys.exit(fail(exc).exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "main"]
