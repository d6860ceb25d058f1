"""One error model for both transports (TF Serving's code <-> HTTP status table, SPEC §2.8)."""

from __future__ import annotations

import pickle

import pytest

from tfs_async import errors
from tfs_async.errors import StatusCode
from tfs_async.types import ModelSpec

# SPEC §2.8, model_servers/http_server.cc
TF_HTTP_TABLE = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}


@pytest.mark.parametrize(("code", "status"), TF_HTTP_TABLE.items())
def test_http_status_for_every_code_matches_tf_serving(code: str, status: int) -> None:
    assert errors.http_status_for_code(StatusCode[code]) == status


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.InvalidArgumentError),
        (401, errors.UnauthenticatedError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (429, errors.ResourceExhaustedError),
        (499, errors.CancelledError),
        (500, errors.InternalError),
        (501, errors.UnimplementedError),
        (503, errors.UnavailableError),
        (504, errors.DeadlineExceededError),
    ],
)
def test_http_status_maps_to_the_class_grpc_gets(status: int, cls: type) -> None:
    err = errors.error_from_http(status, b'{"error": "boom"}')
    assert type(err) is cls
    # The gRPC side of the same condition lands in the same class.
    assert isinstance(errors.error_for_code(err.code, "boom"), cls)
    assert err.http_status == status
    assert err.message == "boom"


def test_every_code_has_its_own_class() -> None:
    classes = {type(errors.error_for_code(c, "x")) for c in StatusCode if c is not StatusCode.OK}
    assert len(classes) == len(StatusCode) - 1


def test_non_json_body_is_kept_as_message() -> None:
    # libevent's own 404 for a path outside /v1/ has an HTML body.
    err = errors.error_from_http(404, b"<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD></HTML>")
    assert isinstance(err, errors.NotFoundError)
    assert "404 Not Found" in err.message


def test_unknown_codes_and_statuses_fall_back() -> None:
    assert type(errors.error_for_code(99, "x")) is errors.UnknownError
    assert type(errors.error_from_http(502, b"")) is errors.UnavailableError
    assert type(errors.error_from_http(418, b"")) is errors.UnknownError
    assert errors.error_from_http(418, b"").message == "HTTP 418 with an empty body"


def test_error_names_model_code_and_message() -> None:
    spec = ModelSpec("din", label="canary")
    err = errors.error_for_code(3, "Unrecognized servable version label: canary", model=spec)
    text = str(err)
    assert "INVALID_ARGUMENT" in text
    assert "'din'" in text
    assert "canary" in text
    assert err.model == spec


def test_errors_survive_pickling() -> None:
    err = errors.error_from_http(503, b'{"error": "busy"}', model=ModelSpec("m", version=2))
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.UnavailableError
    assert (back.code, back.http_status, back.message, back.model) == (
        err.code,
        503,
        "busy",
        err.model,
    )
    inp = errors.InvalidInputError("bad dtype", input_name="x", expected="float32")
    back_inp = pickle.loads(pickle.dumps(inp))
    assert (back_inp.input_name, back_inp.expected) == ("x", "float32")
    assert isinstance(back_inp, ValueError)


def test_connection_failure_is_unavailable() -> None:
    err = errors.ConnectionFailedError("connection refused")
    assert isinstance(err, errors.UnavailableError)
    assert err.code is StatusCode.UNAVAILABLE
