"""Monitoring thresholds: one pydantic model with defaults, overridden by a YAML file or flags.

Every check in :mod:`pricecast.monitoring.checks` reads its limit from :class:`Thresholds`; the
pipeline's drift and report stages take some of them as parameters (README.md, Runbook).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pricecast.errors import ConfigError
from pricecast.monitoring.drift import DriftThresholds


class Thresholds(BaseModel):
    """Every monitoring threshold, with defaults; a YAML file overrides any of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_directional_accuracy: float | None = Field(
        0.45, ge=0, le=1, description="Share of next-day moves called right; below a coin flip by more than noise.")
    max_mape: float | None = Field(5.0, gt=0, description="Largest MAPE of next-day price forecasts, in percent.")
    psi_warn: float = Field(0.1, gt=0, description="PSI worth a look (LOW alert).")
    psi_alert: float = Field(0.25, gt=0, description="PSI that calls for action (MEDIUM alert).")
    ks_p_value: float = Field(0.01, gt=0, lt=1, description="KS p-value below which a shift is reported.")
    max_run_time_s: float | None = Field(1800.0, gt=0, description="Longest acceptable pipeline run, seconds.")
    max_data_age_business_days: int = Field(
        3, ge=0, description="Business days the newest date may lag today (3 tolerates a holiday).")

    def drift(self) -> DriftThresholds:
        return DriftThresholds(psi_warn=self.psi_warn, psi_alert=self.psi_alert, ks_p_value=self.ks_p_value)


def load_thresholds(path: str | Path | None = None, **overrides: Any) -> Thresholds:
    """Defaults, then a YAML file (optionally under a ``thresholds:`` key), then non-None overrides.

    Raises:
        ConfigError: The file is missing, not a mapping, or holds an unknown key or a bad value.
    """
    values: dict[str, Any] = {}
    if path is not None:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"The thresholds file {path} does not exist.", "Check the --thresholds path.")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"The thresholds file {path} is not valid YAML: {exc}.", "Fix its syntax.") from exc
        if isinstance(data, dict) and isinstance(data.get("thresholds"), dict):
            data = data["thresholds"]
        if not isinstance(data, dict):
            raise ConfigError(f"The thresholds file {path} must hold key: value pairs.", "See README.md (Runbook).")
        values.update({str(k).replace("-", "_"): v for k, v in data.items()})
    values.update({k: v for k, v in overrides.items() if v is not None})
    return thresholds_from(values, f" in {path}" if path else "")


def thresholds_from(values: Mapping[str, Any], where: str = "") -> Thresholds:
    """Defaults with ``values`` on top; an explicit None turns that check off.

    Raises:
        ConfigError: An unknown key or a bad value (``where`` says whose, e.g. " in FILE").
    """
    try:
        thresholds = Thresholds(**values)
        thresholds.drift()  # psi_warn <= psi_alert
        return thresholds
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'thresholds'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid thresholds{where}: {problems}.",
                          f"Valid keys: {', '.join(Thresholds.model_fields)}.") from exc
