"""Every failure a user can cause, with a sentence that says what to do.

Each error carries an ``exit_code`` for the CLI and an ``http_status`` for the server, so both
adapters map errors in one place instead of guessing.
"""

from __future__ import annotations


class PricecastError(Exception):
    """Base class: ``problem`` says what went wrong, ``fix`` what the user should do."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} {fix}".strip())


class ConfigError(PricecastError):
    """Settings or options that cannot work together."""

    exit_code = 2
    http_status = 400


class SourceError(PricecastError):
    """The data source could not be read: unreachable, not data, or not decodable."""

    exit_code = 3
    http_status = 502


class SourceUnavailableError(SourceError):
    """The source did not answer after every retry; an incident record was written."""


class DataFormatError(SourceError):
    """The bytes were read but are not a table we can parse (HTML, truncated, not UTF-8...)."""


class SchemaValidationError(PricecastError):
    """The data does not match the declared schema; a schema diff was written."""

    exit_code = 4
    http_status = 422

    def __init__(self, problem: str, fix: str = "", diff: dict | None = None) -> None:
        super().__init__(problem, fix)
        self.diff = diff or {}


class NumericRangeError(PricecastError):
    """Numbers the data leads to overflow (or vanish) in float64: a named verdict, never a
    non-finite metric written where a person or KFP's metadata would read it."""

    exit_code = 4
    http_status = 422


class StorageError(PricecastError):
    """The object store or file system refused, lost or could not be reached."""

    exit_code = 5
    http_status = 503


class WriteOutcomeUnknownError(StorageError):
    """A conditional write got no answer: the store may or may not have applied it.

    Resending it blindly is wrong (a lost reply plus a resend reads as a conflict with our own
    write), so the caller reads the document back and checks for its operation id.
    """


class RegistryError(PricecastError):
    """The model registry is missing, inconsistent, or the requested change is not allowed."""

    exit_code = 6
    http_status = 409


class ModelNotFoundError(RegistryError):
    """A version that the registry, a pin or a request names does not exist."""

    http_status = 404


class ModelIntegrityError(RegistryError):
    """Model bytes whose sha256 does not match the registry: never deserialized."""

    http_status = 503


class ConcurrentUpdateError(RegistryError):
    """Another writer changed the registry first and retries ran out."""


class NothingToRollBackError(RegistryError):
    """A rollback without ``--to`` found no earlier active version left to return to."""


class NoRegistryError(RegistryError):
    """A command that reads the registry found none at the store it used (a wrong or new store)."""

    http_status = 404


class KfpApiError(PricecastError):
    """The KFP API could not be reached, or failed on its side, while a command talked to it."""

    http_status = 502


class KfpRejectedError(KfpApiError):
    """The KFP backend answered and refused the request (a package, run or parameter it will not take)."""

    exit_code = 2
    http_status = 400
