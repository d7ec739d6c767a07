"""Errors a client can cause, each naming its HTTP status, and their one mapping to a response.

Every class derives from :class:`pricecast.errors.PricecastError`, so the message says what was
wrong and what to send instead. Anything that is not a PricecastError is a bug in the server and
becomes a 500 with a generic message (the traceback goes to the log, not to the client).
"""

from __future__ import annotations

import logging

import orjson

from pricecast.errors import ModelNotFoundError, PricecastError

log = logging.getLogger(__name__)


class RequestError(PricecastError):
    """The request cannot be served as sent."""

    http_status = 400


class MalformedRequestError(RequestError):
    """The body is not JSON (or not UTF-8), or uses NaN/Infinity, which JSON does not allow."""

    http_status = 400


class InvalidInputError(RequestError):
    """Valid JSON whose shape, types or values the model cannot take."""

    http_status = 422


class PayloadTooLargeError(RequestError):
    """The body or the batch is larger than the configured limit."""

    http_status = 413


class UnsupportedMediaTypeError(RequestError):
    """A content type other than JSON."""

    http_status = 415


class UnknownModelError(ModelNotFoundError):
    """The request names a model this server does not serve."""

    http_status = 404


class ModelNotReadyError(PricecastError):
    """No model is loaded (yet): the start-up load failed or is still retrying."""

    http_status = 503


class InjectedFaultError(PricecastError):
    """TEST ONLY: ``PRICECAST_FAULT_ERROR_RATE`` chose this request to fail."""

    http_status = 500


def body_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The request body is larger than {limit} bytes.",
                                "Send smaller batches (PRICECAST_MAX_BODY_BYTES sets the limit).")


def error_body(problem: str, fix: str = "") -> bytes:
    """The JSON error document every endpoint answers with: ``{"error": ..., "fix": ...}``."""
    return orjson.dumps({"error": problem, "fix": fix} if fix else {"error": problem})


def to_response(exc: BaseException) -> tuple[int, bytes]:
    """Map any exception to ``(status, body)``: the one place errors become HTTP."""
    if isinstance(exc, PricecastError):
        return exc.http_status, error_body(exc.problem, exc.fix)
    log.exception("unexpected error while serving a request", exc_info=exc)
    return 500, error_body("The server failed on this request.", "It was logged; retry, and report it if it repeats.")
