"""The ``pricecast`` command line: the top of the import graph.

``cli.app`` assembles the typer app from one module per command group: ``registry``,
``pipeline`` (run, compile), ``data`` (validate), ``monitor`` (check ...), ``serve``, ``canary``,
``cluster`` (submit and schedule on KFP) and ``store``. ``options`` holds the options several
groups share and ``failures`` how an error reaches the user. The CLI imports pipelines, serving,
components and the core; nothing imports the CLI.
"""
