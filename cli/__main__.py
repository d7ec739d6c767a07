"""``python -m cli ...``: the same as the ``pricecast`` console command."""

from cli.app import main

main()
