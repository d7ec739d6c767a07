"""What a user reads when KFP says no: the backend's own sentence and a fix for that case, never a traceback.

The exceptions are the ones kfp.Client raises (``kfp_server_api.ApiException`` over a urllib3
response, as its REST layer builds them); the bodies are google.rpc.Status JSON, the shape of
the API server's error responses.
"""

from __future__ import annotations

import json

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from kfp_server_api import ApiException
from kfp_server_api.rest import RESTResponse

from cli.cluster import _quiet, api_error, backend_message
from pricecast.errors import KfpApiError, KfpRejectedError

HOST = "http://127.0.0.1:8080"
REFUSED_SPEC = ("Failed to create a pipeline and a pipeline version: Invalid input error: "
                "pipeline spec is invalid: unknown field \"platformSpec\"")


def api_exception(status: int, body: str | bytes, reason: str = "") -> ApiException:
    raw = body.encode() if isinstance(body, str) else body
    response = urllib3.HTTPResponse(body=raw, status=status, reason=reason, preload_content=True,
                                    headers={"Content-Type": "application/json"})
    return ApiException(http_resp=RESTResponse(response))


def status_body(code: int, message: str) -> str:
    detail = {"@type": "type.googleapis.com/google.rpc.Status", "code": code, "message": message}
    return json.dumps({"code": code, "message": message, "details": [detail]})


def test_a_rejected_package_shows_the_backends_message_and_how_to_fix_the_package() -> None:
    error = api_error(HOST, "submit to", api_exception(400, status_body(3, REFUSED_SPEC), "Bad Request"))

    assert isinstance(error, KfpRejectedError) and error.exit_code == 2
    assert REFUSED_SPEC in error.problem and "HTTP 400" in error.problem and HOST in error.problem
    assert "@type" not in error.problem, "the message, not the raw response body"
    assert "pricecast compile" in error.fix
    assert "port-forward" not in error.fix, "the host answered: pointing at --host would mislead"


@pytest.mark.parametrize(("status", "fix_names"), [
    (401, "--token"),
    (403, "--namespace"),
    (404, "--host"),
    (409, "--param"),
])
def test_each_refusal_points_at_what_the_user_must_change(status: int, fix_names: str) -> None:
    error = api_error(HOST, "schedule on", api_exception(status, status_body(6, "no can do")))
    assert isinstance(error, KfpRejectedError)
    assert "no can do" in error.problem and f"HTTP {status}" in error.problem
    assert fix_names in error.fix


def test_a_backend_failure_is_the_clusters_problem_not_the_request() -> None:
    error = api_error(HOST, "read runs from", api_exception(500, status_body(13, "database is locked")))
    assert type(error) is KfpApiError and error.exit_code == 1
    assert "database is locked" in error.problem
    assert "logs" in error.fix


def test_nothing_answering_names_the_host_and_the_port_forward() -> None:
    refused = urllib3.exceptions.MaxRetryError(None, "/apis/v2beta1/healthz", reason=ConnectionRefusedError(111))
    error = api_error(HOST, "reach", refused)
    assert type(error) is KfpApiError
    assert HOST in error.problem and "port-forward" in error.fix


def test_a_body_that_is_not_json_is_shown_as_it_came() -> None:
    page = b"<html><body>\n  502 Bad Gateway\n</body></html>"
    assert backend_message(page) == "<html><body> 502 Bad Gateway </body></html>"


@given(st.text(min_size=1).filter(lambda text: text.strip()))
def test_the_status_message_is_what_the_user_reads(message: str) -> None:
    assert backend_message(status_body(3, message).encode()) == " ".join(message.split())


def test_an_api_exception_inside_a_command_becomes_the_named_error() -> None:
    with pytest.raises(KfpRejectedError, match="rejected the request"):
        with _quiet(HOST, "submit to"):
            raise api_exception(400, status_body(3, REFUSED_SPEC))
