"""The model registry: every version, its metrics and decision, and which one is active.

Layout in the model store (a ``file://`` directory or an ``s3://`` prefix)::

    registry.json                     this document (versions, active, events, revision)
    models/<version>/model.skops      the model bytes: immutable once written
    models/<version>/metadata.json    features, training window, data hash, metrics, sha256

Model versions are immutable; only ``active`` moves. Rollback moves it back, never rewrites a
model. Every change is a pure function ``Registry -> Registry`` applied by
:meth:`RegistryStore.update` under optimistic concurrency (compare-and-swap on the document's
ETag or, locally, under a file lock), re-read and re-applied on conflict: two pipelines
promoting at once both land, in some order, and neither update is lost.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from pricecast import storage
from pricecast.errors import (
    ConcurrentUpdateError,
    ModelIntegrityError,
    ModelNotFoundError,
    NoRegistryError,
    NothingToRollBackError,
    RegistryError,
)
from pricecast.settings import absolute_store_url, get_settings

log = logging.getLogger(__name__)

Decision = Literal["promoted", "pending", "rejected"]
Action = Literal["register", "promote", "reject", "approve", "rollback"]
MODEL_FILE = "model.skops"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelVersion(BaseModel):
    """One trained model as the registry records it."""

    version: str
    created_at: str
    sha256: str = Field(description="sha256 of the model bytes; checked before every load.")
    data_hash: str = Field(description="sha256 of the training features the model saw.")
    artifact: str = Field(description="Path of the model bytes relative to the store root.")
    framework: str = "sklearn"
    features: list[str] = Field(default_factory=list)
    training_window: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    main_metric: str = "mape"
    decision: Decision = "rejected"
    reason: str = ""
    approved_at: str | None = None


class RegistryEvent(BaseModel):
    at: str
    action: Action
    version: str
    reason: str = ""
    previous_active: str | None = None


class Registry(BaseModel):
    """The whole document. ``revision`` increases by one per committed change."""

    schema_version: int = 1
    revision: int = 0
    active: str | None = None
    versions: dict[str, ModelVersion] = Field(default_factory=dict)
    events: list[RegistryEvent] = Field(default_factory=list)

    # ------------------------------------------------------------------ queries
    def get(self, version: str) -> ModelVersion:
        try:
            return self.versions[version]
        except KeyError:
            known = ", ".join(sorted(self.versions)) or "none"
            raise ModelNotFoundError(
                f"Model version {version!r} is not in the registry (known: {known}).",
                "Run `pricecast registry list` to see the versions.",
            ) from None

    def active_version(self) -> ModelVersion | None:
        return self.versions.get(self.active) if self.active else None

    def resolve(self, pin: str = "active") -> ModelVersion:
        """The version a server should load: ``active`` or an explicit version."""
        if pin in ("", "active"):
            if not self.active:
                raise ModelNotFoundError(
                    "The registry has no active model yet.",
                    "Run the pipeline (`pricecast run`) or approve a pending version.",
                )
            return self.get(self.active)
        return self.get(pin)

    def servable(self, version: str) -> ModelVersion:
        """``version`` if a server may be given it (a canary, a pin): known and not rejected.

        Pending versions pass: serving one as a canary is how it is tried before approval.
        """
        mv = self.get(version)
        if mv.decision == "rejected":
            raise RegistryError(
                f"Version {version!r} was rejected by the gate ({mv.reason or 'no reason recorded'}); "
                "it must not serve traffic.",
                "Pick a promoted or pending version from `pricecast registry list`.",
            )
        return mv

    def gated_against(self, version: str) -> str | None:
        """The version that was active when ``version`` was gated and registered (None: none was)."""
        for event in self.events:
            if event.version == version and event.action in ("promote", "register", "reject"):
                return event.previous_active
        return None

    def reference_for(self, candidate: str) -> ModelVersion | None:
        """The model a candidate is evaluated against: the active one, unless it *is* the candidate.

        A rerun on the same data trains the same version; once promoted, comparing it with itself
        says nothing and would recompute every window. It is compared with what it was gated
        against instead, so a rerun restores those checkpoints and reaches the same verdict.
        """
        if self.active != candidate:
            return self.active_version()
        earlier = self.gated_against(candidate)
        return self.versions.get(earlier) if earlier else None

    def activation_history(self) -> list[str]:
        """Versions in the order they were first made active (promoted or approved), oldest first."""
        return [e.version for e in self.events if e.action in ("promote", "approve")]

    def rolled_away(self) -> set[str]:
        """Versions a rollback retreated from and that no rollback has made active again since.

        Replayed from the event log, not stored beside it, so there is one record of what
        happened and registries written before this rule existed are read by it too. A rollback is a
        retreat when it goes to a version made active before the one it leaves; a rollback to a
        later one (``--to`` a version rolled away from, say) moves forward and marks nothing.
        """
        order = {version: i for i, version in enumerate(self.activation_history())}
        away: set[str] = set()
        for event in self.events:
            if event.action == "rollback":
                away.discard(event.version)
                left = event.previous_active
                if left in order and event.version in order and order[event.version] < order[left]:
                    away.add(left)
        return away


# ---------------------------------------------------------------------- pure transitions
def _with_event(reg: Registry, event: RegistryEvent, **changes: Any) -> Registry:
    return reg.model_copy(update={**changes, "events": [*reg.events, event]})


def register(reg: Registry, candidate: ModelVersion) -> Registry:
    """Record ``candidate`` with its decision; a ``promoted`` one becomes active.

    Idempotent: registering the same version with the same sha256 again changes nothing.
    """
    existing = reg.versions.get(candidate.version)
    if existing is not None:
        if existing.sha256 != candidate.sha256:
            raise RegistryError(
                f"Version {candidate.version!r} already exists with different bytes.",
                "Versions are immutable; train again to get a new version.",
            )
        return reg
    versions = {**reg.versions, candidate.version: candidate}
    action: Action = {"promoted": "promote", "pending": "register", "rejected": "reject"}[candidate.decision]
    event = RegistryEvent(at=now_iso(), action=action, version=candidate.version,
                          reason=candidate.reason, previous_active=reg.active)
    active = candidate.version if candidate.decision == "promoted" else reg.active
    return _with_event(reg, event, versions=versions, active=active)


def approve(reg: Registry, version: str) -> Registry:
    """Make a ``pending`` version active (``--require-approval`` mode)."""
    mv = reg.get(version)
    if mv.decision != "pending":
        raise RegistryError(
            f"Version {version!r} is {mv.decision}, not pending; only pending versions can be approved.",
            "Use `pricecast registry rollback --to VERSION` to activate an earlier promoted version.",
        )
    approved = mv.model_copy(update={"decision": "promoted", "approved_at": now_iso()})
    event = RegistryEvent(at=now_iso(), action="approve", version=version,
                          reason="approved by operator", previous_active=reg.active)
    return _with_event(reg, event, versions={**reg.versions, version: approved}, active=version)


def rollback(reg: Registry, to: str | None = None, reason: str = "") -> Registry:
    """Move ``active`` to ``to`` or, when omitted, to the version made active before it.

    Without ``to``, repeated rollbacks walk back through the activation history (v3 -> v2 -> v1)
    and skip the versions a rollback retreated from (:meth:`Registry.rolled_away`), so a second
    rollback goes further back instead of returning to the version the first one left.
    """
    if to is None:
        history, skip = reg.activation_history(), reg.rolled_away()
        earlier = history[:history.index(reg.active)] if reg.active in history else []
        # The first version ever made active is never skipped (no rollback retreats from it), so
        # this is empty only when the active version is that first one.
        earlier = [v for v in earlier if v not in skip]
        if not earlier:
            raise _nothing_to_roll_back(reg)
        to = earlier[-1]
    target = reg.get(to)
    if target.decision != "promoted":
        raise RegistryError(
            f"Version {to!r} was {target.decision}; only versions that passed the gate can be active.",
            "Pick a promoted version from `pricecast registry list`.",
        )
    if to == reg.active:
        return reg
    event = RegistryEvent(at=now_iso(), action="rollback", version=to,
                          reason=reason or "operator rollback", previous_active=reg.active)
    return _with_event(reg, event, active=to)


def _nothing_to_roll_back(reg: Registry) -> NothingToRollBackError:
    if reg.active is None:
        return NothingToRollBackError(
            "There is nothing to roll back: the registry has no active model.",
            "Run the pipeline (`pricecast run`) or approve a pending version (`pricecast registry approve VERSION`).",
        )
    problem = f"There is no earlier version to roll back to: {reg.active} was the first version made active."
    others = sorted(v for v, mv in reg.versions.items() if mv.decision == "promoted" and v != reg.active)
    if not others:
        return NothingToRollBackError(
            problem,
            "`pricecast registry rollback --to VERSION` needs another promoted version. Train one on "
            "new data or with other parameters (`pricecast run --source ...`, `--config run.yaml`): "
            "a rerun on the same data restores the same model and registers nothing new.",
        )
    return NothingToRollBackError(
        problem,
        f"Name the version to activate: `pricecast registry rollback --to VERSION` (promoted: {', '.join(others)}; "
        "see `pricecast registry list`).",
    )


# ---------------------------------------------------------------------- storage adapter
class RegistryStore:
    """Reads and atomically updates ``registry.json`` and the model files under ``store_url``."""

    def __init__(self, store_url: str | None = None, max_attempts: int = 20) -> None:
        self.store_url = absolute_store_url(store_url) if store_url else get_settings().store_url
        self.url = storage.join(self.store_url, "registry.json")
        self.max_attempts = max_attempts

    # ------------------------------------------------------------------ documents
    def _read(self) -> tuple[Registry, str | None]:
        data, token = storage.read_versioned(self.url)
        if data is None:
            return Registry(), None
        try:
            return Registry.model_validate_json(data), token
        except ValueError as exc:
            raise RegistryError(
                f"{self.url} is not a valid registry document ({exc.__class__.__name__}).",
                "Restore it from the object store's version history or backups; model files are untouched.",
            ) from exc

    def load(self) -> Registry:
        return self._read()[0]

    def load_existing(self) -> Registry:
        """The registry, for commands that only read it: none at the store is an error, not an
        empty registry (a relative or mistyped store would otherwise look like a new one)."""
        reg, token = self._read()
        if token is None:
            raise NoRegistryError(
                f"There is no registry at {self.store_url} (no registry.json).",
                "Point --store (or PRICECAST_STORE_URL) at the store your runs used (`pricecast run` "
                "prints it); `pricecast run` creates a registry in a new store.",
            )
        return reg

    def update(self, change: Callable[[Registry], Registry]) -> Registry:
        """Apply ``change`` with compare-and-swap, retrying on a concurrent writer."""
        for attempt in range(1, self.max_attempts + 1):
            current, token = self._read()
            new = change(current)
            if new is current:
                return current  # nothing to write: idempotent no-op
            new = new.model_copy(update={"revision": current.revision + 1})
            try:
                storage.compare_and_swap(self.url, new.model_dump_json(indent=2).encode(), token)
                log.info("registry revision %d written (active=%s)", new.revision, new.active)
                return new
            except ConcurrentUpdateError:
                delay = min(0.05 * 2 ** attempt, 1.0) * random.uniform(0.5, 1.0)
                log.warning("registry changed concurrently (attempt %d); retrying in %.2fs", attempt, delay)
                time.sleep(delay)
        raise ConcurrentUpdateError(
            f"Could not update {self.url} after {self.max_attempts} attempts: other writers kept winning.",
            "Rerun the command; no partial change was written.",
        )

    # ------------------------------------------------------------------ model files
    def model_url(self, version: str) -> str:
        return storage.join(self.store_url, "models", version, MODEL_FILE)

    def metadata_url(self, version: str) -> str:
        return storage.join(self.store_url, "models", version, "metadata.json")

    def read_metadata(self, version: str) -> dict[str, Any] | None:
        """``models/<version>/metadata.json`` (train's model_info), or None (logged) when unreadable.

        For what only enriches serving (the live drift profile, the outlier bounds): a model
        whose metadata is missing still serves, without them.
        """
        url = self.metadata_url(version)
        try:
            document = json.loads(storage.read_text(url))
        except Exception as exc:  # noqa: BLE001 - optional: the caller says what it goes without
            log.warning("Cannot read the metadata of %s at %s (%s).", version, url, exc)
            return None
        return document if isinstance(document, dict) else None

    def put_model(self, version: str, model_bytes: bytes, metadata: dict[str, Any]) -> str:
        """Store the model bytes and metadata once; rewriting a version with other bytes fails."""
        url = self.model_url(version)
        sha = storage.sha256_bytes(model_bytes)
        if storage.exists(url):
            if storage.sha256_bytes(storage.read_bytes(url)) != sha:
                raise RegistryError(f"{url} exists with different bytes.", "Versions are immutable.")
        else:
            storage.write_bytes(url, model_bytes)
        storage.write_text(self.metadata_url(version), json.dumps(metadata, indent=2, default=str))
        return f"models/{version}/{MODEL_FILE}"

    def fetch_verified(self, mv: ModelVersion) -> bytes:
        """The model bytes of ``mv``, only after their sha256 matches the registry."""
        url = storage.join(self.store_url, mv.artifact)
        try:
            data = storage.read_bytes(url)
        except FileNotFoundError:
            raise ModelNotFoundError(
                f"The registry names {mv.version} but {url} is missing.",
                "Roll back to another version (`pricecast registry rollback`) or retrain.",
            ) from None
        actual = storage.sha256_bytes(data)
        if actual != mv.sha256:
            raise ModelIntegrityError(
                f"Model {mv.version} at {url} has sha256 {actual[:12]}…, the registry says {mv.sha256[:12]}…; "
                "refusing to load it.",
                "The bytes were corrupted or replaced: roll back (`pricecast registry rollback`) and retrain.",
            )
        return data
