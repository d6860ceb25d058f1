"""TF Serving's REST URL grammar (http_rest_api_util_test.cc cases from vectors.json, by id),
plus the handler-level rules around it (SPEC §2.1-2.2)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import reference as tfs_reference
from tfs_async.errors import StatusCode
from tfs_async.testing.rest_path import RestRoute, is_v1_path, parse_rest_request
from tfs_async.testing.status import ServingStatus

_CASES = tfs_reference.load_vectors("path_parse")


@pytest.mark.parametrize("case", _CASES, ids=[c["id"] for c in _CASES])
def test_path_parse(case: dict[str, Any]) -> None:
    method, path = case["input"]["method"], case["input"]["path"]
    expected = case["expected"]
    if not expected["parse_successful"]:
        # ParseModelInfo fails quietly; the handler then answers "Malformed request".
        with pytest.raises(ServingStatus) as info:
            parse_rest_request(method, path)
        assert info.value.code == StatusCode.INVALID_ARGUMENT
        assert info.value.message == f"Malformed request: {method} {path}"
        return
    if expected.get("status", "OK") != "OK":
        with pytest.raises(ServingStatus) as info:
            parse_rest_request(method, path)
        assert info.value.code == StatusCode[expected["status"]]
        assert expected["message_contains"] in info.value.message
        return
    route = parse_rest_request(method, path)
    assert route.model_name == expected["model_name"]
    assert route.version == expected.get("model_version")
    assert route.label == expected.get("model_version_label")
    if method == "POST":
        assert route.action == expected["method"]
    else:
        assert route.action == ("metadata" if expected.get("model_subresource") else "status")


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/v1/models/m:classify", RestRoute("classify", "m")),
        ("POST", "/v1/models/m/versions/007:regress", RestRoute("regress", "m", version=7)),
        ("POST", "/V1/MODELS/m/VERSIONS/3:predict", RestRoute("predict", "m", version=3)),
        ("GET", "/v1/models/m/labels/canary", RestRoute("status", "m", label="canary")),
        ("GET", "/v1/models/m/versions/2/metadata", RestRoute("metadata", "m", version=2)),
        # The subresource matches case-insensitively but only "metadata" dispatches to it.
        ("GET", "/v1/models/m/METADATA", RestRoute("status", "m")),
        # A lone "metadata" segment is the model name (the name group is greedy).
        ("GET", "/v1/models/metadata", RestRoute("status", "metadata")),
        ("GET", "/v1/models/metadata/metadata", RestRoute("metadata", "metadata")),
        # '+' is not a space; %-escapes decode after matching.
        ("GET", "/v1/models/a+b%20c%3A", RestRoute("status", "a+b c:")),
        # Query strings are part of the path: on GET they land in the model name.
        ("GET", "/v1/models/m?x=1", RestRoute("status", "m?x=1")),
        (
            "POST",
            "/v1/models/m/versions/9223372036854775807:predict",
            RestRoute("predict", "m", version=2**63 - 1),
        ),
    ],
)
def test_routes(method: str, path: str, route: RestRoute) -> None:
    assert parse_rest_request(method, path) == route


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/v1/models", "Missing model name in request."),
        ("GET", "/v1/models/versions/3", "Missing model name in request."),
        ("POST", "/v1/models/m:PREDICT", "Malformed request: POST /v1/models/m:PREDICT"),
        ("POST", "/v1/models/m:predict?x=1", "Malformed request: POST /v1/models/m:predict?x=1"),
        ("PUT", "/v1/models/m:predict", "Malformed request: PUT /v1/models/m:predict"),
        ("get", "/v1/models/m", "Malformed request: get /v1/models/m"),
        (
            "GET",
            "/v1/models/m/versions/1/labels/x",
            "Malformed request: GET /v1/models/m/versions/1/labels/x",
        ),
        (
            "GET",
            "/v1/models/m/versions/9223372036854775808",
            "Failed to convert version: 9223372036854775808 to numeric.",
        ),
        (
            "POST",
            "/v1/models/m/versions/\u0661:predict",
            "Malformed request: POST /v1/models/m/versions/\u0661:predict",
        ),
    ],
)
def test_rejected(method: str, path: str, message: str) -> None:
    with pytest.raises(ServingStatus) as info:
        parse_rest_request(method, path)
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    assert info.value.message == message


@pytest.mark.parametrize(
    ("path", "handled"),
    [
        ("/v1/models/m", True),
        ("/V1/", True),
        ("/v1/x?y=z", True),
        ("/v1", False),
        ("/v2/models/m", False),
        ("/monitoring/prometheus/metrics", False),
        ("v1/models/m", False),
    ],
)
def test_is_v1_path(path: str, handled: bool) -> None:
    assert is_v1_path(path) is handled
