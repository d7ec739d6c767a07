"""Checks of pipeline parameters that hold for every way a run is started (kfp.local or a cluster)."""

from __future__ import annotations

import math
from typing import Any

from pricecast.errors import ConfigError


def check_arguments(arguments: dict[str, Any]) -> None:
    """Every float parameter finite: KFP carries parameters as protobuf JSON numbers, which have
    no NaN or infinity; kfp.local failed on them with a serialization traceback before any task
    ran, and a cluster's API server would refuse the run.

    Raises:
        ConfigError: Naming each such parameter.
    """
    bad = [f"{name}={value}" for name, value in arguments.items()
           if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise ConfigError(f"Pipeline parameter(s) {', '.join(bad)} are not finite numbers.",
                          "Give each a finite value (see `pricecast run --help` for their ranges).")
