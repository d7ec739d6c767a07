"""The model registry: every version, its metrics and decision, and which one is active.

Layout in the model store (a ``file://`` directory or an ``s3://`` prefix)::

    registry.json                     this document (versions, active, events, revision)
    models/<version>/model.skops      the model bytes: immutable once written
    models/<version>/metadata.json    train's model_info: written once, its sha256 in the registry

Model versions are immutable; only ``active`` moves. Rollback moves it back, never rewrites a
model. Every change is a pure function ``Registry -> Registry`` applied by
:meth:`RegistryStore.update` under optimistic concurrency (compare-and-swap on the document's
ETag or, locally, under a file lock), re-read and re-applied on conflict: two pipelines
promoting at once both land, in some order, and neither update is lost.

Exactly once: each update carries an operation id, stamped on the event it adds. A conditional
write whose reply was lost may have landed, and resending it answers 412 for our own write; so
on any conflict or unanswered write the document is re-read, and an operation already in it is
done, never applied a second time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from pricecast import storage
from pricecast.errors import (
    ConcurrentUpdateError,
    ModelIntegrityError,
    ModelNotFoundError,
    NoRegistryError,
    NothingToRollBackError,
    PricecastError,
    RegistryError,
    WriteOutcomeUnknownError,
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
    metadata_sha256: str = Field(default="", description="sha256 of metadata.json; checked when it is loaded "
                                                         "('' for versions registered before it was recorded).")
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
    compared_against: str | None = Field(
        default=None, description="The active version the gate compared it with (None: the naive forecast, "
                                  "no model was active). A rerun on the same data is compared with it again.")


class RegistryEvent(BaseModel):
    at: str
    action: Action
    version: str
    reason: str = ""
    previous_active: str | None = None
    op_id: str = Field(default="", description="The operation that wrote this event: how a retry knows it landed.")


def new_op_id() -> str:
    return uuid.uuid4().hex


class Registry(BaseModel):
    """The whole document. ``revision`` increases by one per committed change."""

    schema_version: int = 1
    revision: int = 0
    active: str | None = None
    versions: dict[str, ModelVersion] = Field(default_factory=dict)
    events: list[RegistryEvent] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _recorded_before_compared_against(cls, data: Any) -> Any:
        """Versions registered before ``compared_against`` was recorded: the version active then.

        Their gate compared them with the active model of that moment, which the event that
        registered them kept as ``previous_active``; read once here, written back with the next update.
        """
        if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
            return data
        missing = {v for v, mv in data["versions"].items() if isinstance(mv, dict) and "compared_against" not in mv}
        if not missing:
            return data
        then: dict[str, str | None] = {}
        for e in data.get("events", []):
            e = e if isinstance(e, dict) else e.model_dump()
            if e.get("version") in missing and e.get("action") in ("promote", "register", "reject"):
                then.setdefault(e["version"], e.get("previous_active"))
        versions = {v: {**mv, "compared_against": then.get(v)} if v in missing else mv
                    for v, mv in data["versions"].items()}
        return {**data, "versions": versions}

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

    def has_operation(self, op_id: str) -> bool:
        """Whether the operation ``op_id`` is already recorded (so it must not be applied again)."""
        return any(e.op_id == op_id for e in self.events)

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

    def reference_for(self, candidate: str) -> ModelVersion | None:
        """The model a candidate is evaluated against: the active one, unless it *is* the candidate.

        A rerun on the same data trains the same version; once promoted, comparing it with itself
        says nothing and would recompute every window. It is compared with the version its gate
        compared it with (its ``compared_against``) instead, so a rerun restores those
        checkpoints and reaches the same verdict.
        """
        if self.active != candidate:
            return self.active_version()
        earlier = self.get(candidate).compared_against
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


def register_gated(reg: Registry, candidate: ModelVersion, compared_against: str | None) -> Registry:
    """:func:`register`, with the gate's reference as a precondition of moving ``active``.

    The gate compared ``candidate`` with ``compared_against`` (None: no model was active, the
    naive forecast was the reference). If ``active`` has moved since (an operator's rollback, a
    concurrent run's promotion), promoting would undo that change or ship a model never compared
    with the one serving, so a ``promoted`` candidate is recorded ``pending`` with the reason.
    Applied inside :meth:`RegistryStore.update`, this check is part of the compare-and-swap.
    The candidate is recorded with its ``compared_against`` (see :meth:`Registry.reference_for`).
    """
    candidate = candidate.model_copy(update={"compared_against": compared_against})
    if candidate.decision != "promoted" or reg.active == compared_against or candidate.version in reg.versions:
        return register(reg, candidate)
    mover = next((e for e in reversed(reg.events) if e.version == reg.active), None)
    how = f" ({mover.action} at {mover.at}: {mover.reason})" if mover and mover.reason else ""
    reference = compared_against or "no active model (the naive forecast)"
    reason = (f"{candidate.reason} Not promoted: the gate compared it with {reference}, but the active model is "
              f"now {reg.active}{how}. Rerun the pipeline to gate it against {reg.active}, or approve it after "
              f"review: `pricecast registry approve {candidate.version}`.").strip()
    return register(reg, candidate.model_copy(update={"decision": "pending", "reason": reason}))


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


def _stamped(current: Registry, new: Registry, op_id: str) -> Registry:
    """``new`` as the next revision, its added events carrying ``op_id``."""
    added = new.events[len(current.events):]
    if not added or new.events[:len(current.events)] != current.events:
        raise RegistryError("A registry change must append its events to the log and keep the others.",
                            "This is a bug in pricecast; report it with the command you ran.")
    events = [*current.events, *(e.model_copy(update={"op_id": op_id}) for e in added)]
    return new.model_copy(update={"revision": current.revision + 1, "events": events})


def _read_verified(url: str, expected_sha256: str, missing: PricecastError,
                   mismatch: Callable[[str], PricecastError]) -> bytes:
    """The bytes at ``url``, only when their sha256 is the one the registry recorded.

    ``missing`` is raised when the file is gone, ``mismatch(actual_sha256)`` when it differs.
    """
    try:
        data = storage.read_bytes(url)
    except FileNotFoundError:
        raise missing from None
    actual = storage.sha256_bytes(data)
    if actual != expected_sha256:
        raise mismatch(actual)
    return data


def _metadata_document(text: str | bytes, version: str, url: str) -> dict[str, Any]:
    """metadata.json parsed, or ModelIntegrityError when it is not a JSON object."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        document = exc
    if not isinstance(document, dict):
        raise ModelIntegrityError(f"The metadata of model {version} at {url} is not a JSON object.",
                                  "The file was corrupted or replaced: roll back (`pricecast registry "
                                  "rollback`) and retrain.")
    return document


# ---------------------------------------------------------------------- storage adapter
@dataclasses.dataclass(frozen=True)
class StoredModel:
    """Where :meth:`RegistryStore.put_model` put a version and the hashes to register with it."""

    artifact: str  # the model bytes, relative to the store root
    sha256: str
    metadata_sha256: str


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

    def update(self, change: Callable[[Registry], Registry], op_id: str | None = None) -> Registry:
        """Apply ``change`` exactly once with compare-and-swap, retrying on a concurrent writer.

        ``op_id`` (default: a fresh one) is stamped on the event the change adds. Before every
        attempt the registry is re-read; when it already holds ``op_id`` an earlier attempt
        landed (its reply was lost) and that registry is returned instead of applying again.
        """
        op_id = op_id or new_op_id()
        unanswered: WriteOutcomeUnknownError | None = None
        for attempt in range(1, self.max_attempts + 1):
            current, token = self._read()
            if current.has_operation(op_id):
                # Worth a warning: a reply was lost on the way back, a network fault someone may chase.
                log.warning("registry operation %s already landed (revision %d): not applied again",
                            op_id, current.revision)
                return current
            new = change(current)
            if new is current:
                return current  # nothing to write: idempotent no-op
            new = _stamped(current, new, op_id)
            try:
                storage.compare_and_swap(self.url, new.model_dump_json(indent=2).encode(), token)
                log.info("registry revision %d written (active=%s)", new.revision, new.active)
                return new
            except WriteOutcomeUnknownError as exc:
                unanswered = exc  # maybe written: the next read says, by op_id
                log.warning("registry write got no answer (attempt %d); reading it back", attempt)
            except ConcurrentUpdateError:
                unanswered = None
                delay = min(0.05 * 2 ** attempt, 1.0) * random.uniform(0.5, 1.0)
                log.warning("registry changed concurrently (attempt %d); retrying in %.2fs", attempt, delay)
                time.sleep(delay)
        if unanswered is not None:
            raise unanswered
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
        """``models/<version>/metadata.json`` (train's model_info), or None (logged) when there is none.

        Only a missing file means "no metadata" (a version registered without it still serves,
        without a drift profile or outlier bounds). Any other failure raises: a store blip must
        not pass for "no metadata", or a server would serve for its whole life without the
        training run's bounds.

        Raises:
            StorageError: The store could not be read (after its retries).
            ModelIntegrityError: The file is not a JSON object.
        """
        url = self.metadata_url(version)
        try:
            text = storage.read_text(url)
        except FileNotFoundError:
            log.warning("Model %s has no metadata at %s.", version, url)
            return None
        return _metadata_document(text, version, url)

    def put_model(self, version: str, model_bytes: bytes, metadata: dict[str, Any]) -> StoredModel:
        """Store the model bytes and metadata.json once; what the registry records about them.

        Both files are immutable: rewriting a version with other bytes fails, and a metadata.json
        already there (a rerun) is kept as it is, so the sha256 the registry records stays true.
        """
        url = self.model_url(version)
        sha = storage.sha256_bytes(model_bytes)
        if storage.exists(url):
            if storage.sha256_bytes(storage.read_bytes(url)) != sha:
                raise RegistryError(f"{url} exists with different bytes.", "Versions are immutable.")
        else:
            storage.write_bytes(url, model_bytes)
        meta_url = self.metadata_url(version)
        try:
            document = storage.read_bytes(meta_url)
        except FileNotFoundError:
            document = json.dumps(metadata, indent=2, default=str).encode()
            storage.write_bytes(meta_url, document)
        return StoredModel(f"models/{version}/{MODEL_FILE}", sha, storage.sha256_bytes(document))

    def fetch_verified(self, mv: ModelVersion) -> bytes:
        """The model bytes of ``mv``, only after their sha256 matches the registry."""
        url = storage.join(self.store_url, mv.artifact)
        return _read_verified(
            url, mv.sha256,
            missing=ModelNotFoundError(f"The registry names {mv.version} but {url} is missing.",
                                       "Roll back to another version (`pricecast registry rollback`) or retrain."),
            mismatch=lambda actual: ModelIntegrityError(
                f"Model {mv.version} at {url} has sha256 {actual[:12]}…, the registry says {mv.sha256[:12]}…; "
                "refusing to load it.",
                "The bytes were corrupted or replaced: roll back (`pricecast registry rollback`) and retrain."))

    def fetch_verified_metadata(self, mv: ModelVersion) -> dict[str, Any] | None:
        """``mv``'s metadata.json, only after its sha256 matches the registry.

        A version registered before the hash was recorded falls back to :meth:`read_metadata`.
        """
        if not mv.metadata_sha256:
            return self.read_metadata(mv.version)
        url, expected = self.metadata_url(mv.version), mv.metadata_sha256
        data = _read_verified(
            url, expected,
            missing=ModelIntegrityError(f"The registry records metadata for {mv.version} but {url} is missing.",
                                        "The store lost a file: roll back (`pricecast registry rollback`) and retrain."),
            mismatch=lambda actual: ModelIntegrityError(
                f"Metadata of {mv.version} at {url} has sha256 {actual[:12]}…, the registry says "
                f"{expected[:12]}…; refusing to use it.",
                "The file was corrupted or replaced: roll back (`pricecast registry rollback`) and retrain."))
        return _metadata_document(data, version=mv.version, url=url)
