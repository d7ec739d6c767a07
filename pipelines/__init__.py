"""The pipeline: its definition, its compilation and its local run.

This package compiles and runs the pipeline; it never talks to a KFP API server (cli/cluster.py
does, with ``kfp.client.Client``). So ``kfp`` is imported here without its API client:
``kfp/__init__.py`` imports ``kfp.Client``, and with it the Kubernetes and Google auth clients,
unless ``_KFP_RUNTIME`` is "true" (the switch KFP's own task executor uses). That import was
0.4 of the 0.55 s ``from kfp import dsl, local`` takes, in every ``pricecast run``. The variable
is set only while the package's ``__init__`` runs, so ``kfp.dsl`` and ``kfp.local``, imported
after it, are the full SDK, and no child process inherits it. Where ``kfp`` is already imported,
or a later KFP drops the switch, this changes nothing but the time.
"""

import importlib as _importlib
import os as _os
import sys as _sys

if "kfp" not in _sys.modules:
    _previous = _os.environ.get("_KFP_RUNTIME")
    _os.environ["_KFP_RUNTIME"] = "true"
    try:
        _importlib.import_module("kfp")
    finally:
        if _previous is None:
            del _os.environ["_KFP_RUNTIME"]
        else:
            _os.environ["_KFP_RUNTIME"] = _previous
