"""REST transport behaviour of the emulator: gzip, headers, 404 page, methods, big bodies, CORS."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import ClientSession
from yarl import URL

from tfs_async.testing import ModelServer, PythonModel
from tfs_async.testing.rest_service import MAX_UNCOMPRESSED_BYTES

TIMEOUT = 10.0  # every await here is bounded by this many seconds
PREDICT = "/v1/models/double:predict"

# Headers the HTTP layer itself adds; TF Serving's handler sets only Content-Type.
_TRANSPORT_HEADERS = {"Content-Length", "Date", "Server", "Connection", "Keep-Alive"}


async def _post(
    http: ClientSession, server: ModelServer, path: str, body: bytes, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with (
        asyncio.timeout(TIMEOUT),
        # encoded=True: the path goes out byte for byte, escapes untouched.
        http.post(URL(server.rest_url + path, encoded=True), data=body, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def test_predict_answers_json_with_only_content_type(
    http: ClientSession, server: ModelServer
) -> None:
    status, headers, body = await _post(http, server, PREDICT, b'{"instances": [1.0, 2.0]}')
    assert status == 200
    assert json.loads(body) == {"predictions": [4.0, 6.0]}  # latest version 2: 2x + 2
    assert headers["Content-Type"] == "application/json"
    assert set(headers) - _TRANSPORT_HEADERS == {"Content-Type"}


async def test_errors_are_json_with_only_content_type(
    http: ClientSession, server: ModelServer
) -> None:
    status, headers, body = await _post(
        http, server, "/v1/models/missing:predict", b'{"instances": [1.0]}'
    )
    assert status == 404
    assert json.loads(body) == {"error": "Servable not found for request: Latest(missing)"}
    assert set(headers) - _TRANSPORT_HEADERS == {"Content-Type"}
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", "deflate, gzip"])
async def test_gzip_request_bodies(http: ClientSession, server: ModelServer, encoding: str) -> None:
    body = gzip.compress(b'{"inputs": [1.0, 2.0, 3.0]}')
    status, _, answer = await _post(http, server, PREDICT, body, **{"Content-Encoding": encoding})
    assert status == 200, answer
    assert json.loads(answer) == {"outputs": [4.0, 6.0, 8.0]}


async def test_gzip_over_the_limit_is_refused(http: ClientSession, server: ModelServer) -> None:
    # Zeros compress ~1000:1, so 100 MiB + 1 byte costs little to send.
    bomb = gzip.compress(b"0" * (MAX_UNCOMPRESSED_BYTES + 1), compresslevel=1)
    status, headers, body = await _post(http, server, PREDICT, bomb, **{"Content-Encoding": "gzip"})
    assert status == 400
    assert headers.get("Content-Type") != "application/json"
    assert b"predictions" not in body


async def test_broken_gzip_is_refused(http: ClientSession, server: ModelServer) -> None:
    status, _, _ = await _post(
        http, server, PREDICT, b"not gzip at all", **{"Content-Encoding": "gzip"}
    )
    assert status == 400


async def test_bodies_beyond_a_mebibyte(http: ClientSession, server: ModelServer) -> None:
    values = np.arange(400_000, dtype=np.float32)
    body = json.dumps({"inputs": values.tolist()}).encode()
    assert len(body) > 2 * 1024 * 1024
    status, _, answer = await _post(http, server, PREDICT, body)
    assert status == 200
    out = np.asarray(json.loads(answer)["outputs"], dtype=np.float32)
    np.testing.assert_array_equal(out, values * 2 + 2)


@pytest.mark.parametrize("path", ["/", "/v2/models/double", "/models/double:predict", "/v1"])
async def test_paths_outside_v1_get_a_non_json_404(
    http: ClientSession, server: ModelServer, path: str
) -> None:
    async with asyncio.timeout(TIMEOUT), http.get(server.rest_url + path) as resp:
        body = await resp.read()
    assert resp.status == 404
    assert resp.headers["Content-Type"] != "application/json"
    assert body.startswith(b"<HTML>")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_methods_other_than_get_and_post_are_malformed(
    http: ClientSession, server: ModelServer, method: str
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        http.request(method, server.rest_url + "/v1/models/double") as resp,
    ):
        body = json.loads(await resp.read())
    assert resp.status == 400
    assert body == {"error": f"Malformed request: {method} /v1/models/double"}


async def test_query_string_breaks_post_routing(http: ClientSession, server: ModelServer) -> None:
    status, _, body = await _post(http, server, PREDICT + "?debug=1", b'{"instances": [1.0]}')
    assert status == 400
    assert json.loads(body) == {"error": f"Malformed request: POST {PREDICT}?debug=1"}


async def test_query_string_becomes_part_of_the_model_name_on_get(
    http: ClientSession, server: ModelServer
) -> None:
    async with asyncio.timeout(TIMEOUT), http.get(server.rest_url + "/v1/models/double?x=1") as r:
        body = json.loads(await r.read())
    assert r.status == 404
    assert "double?x=1" in body["error"]


async def test_percent_encoded_names_reach_the_core(
    http: ClientSession, server: ModelServer
) -> None:
    status, _, body = await _post(
        http, server, "/v1/models/a%2Fb%3Ac:predict", b'{"instances": [1.0]}'
    )
    assert status == 404
    assert json.loads(body) == {"error": "Servable not found for request: Latest(a/b:c)"}


async def test_version_and_label_paths(http: ClientSession, server: ModelServer) -> None:
    status, _, body = await _post(
        http, server, "/v1/models/double/versions/1:predict", b'{"instances": [1.0]}'
    )
    assert (status, json.loads(body)) == (200, {"predictions": [3.0]})
    status, _, body = await _post(
        http, server, "/v1/models/double/labels/nope:predict", b'{"instances": [1.0]}'
    )
    assert status == 400
    assert "Unrecognized servable version label: nope" in json.loads(body)["error"]


async def test_metadata_over_rest(http: ClientSession, server: ModelServer) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        http.get(server.rest_url + "/v1/models/double/versions/1/metadata") as resp,
    ):
        body: dict[str, Any] = json.loads(await resp.read())
    assert resp.status == 200
    assert body["model_spec"] == {"name": "double", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"


async def test_classify_on_a_predict_only_model_is_an_error_json(
    http: ClientSession, server: ModelServer
) -> None:
    status, headers, body = await _post(
        http, server, "/v1/models/double:classify", b'{"examples": [{"x": 1.0}]}'
    )
    assert status == 400
    assert set(json.loads(body)) == {"error"}
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://example.com", 200),
        ("http://localhost:3000", 200),
        ("null http://x", 200),  # RE2::PartialMatch: http(s):// anywhere in the header
        ("ftp://x", 400),
        (None, 400),
    ],
)
async def test_cors_preflight_without_cors_support_has_no_cors_headers(
    http: ClientSession, server: ModelServer, origin: str | None, status: int
) -> None:
    headers = {"Origin": origin} if origin else {}
    async with (
        asyncio.timeout(TIMEOUT),
        http.options(server.rest_url + PREDICT, headers=headers) as resp,
    ):
        assert await resp.read() == b""
    assert resp.status == status
    assert not {h for h in resp.headers if h.startswith("Access-Control-")}


async def test_options_outside_v1_is_libevents_404(
    http: ClientSession, server: ModelServer
) -> None:
    headers = {"Origin": "https://example.com"}
    async with (
        asyncio.timeout(TIMEOUT),
        http.options(server.rest_url + "/v2/models/double", headers=headers) as resp,
    ):
        assert b"404 Not Found" in await resp.read()
    assert resp.status == 404


async def test_cors_support_adds_the_headers_to_every_api_answer(
    http: ClientSession, make_double_model: Callable[..., PythonModel]
) -> None:
    cors = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST, GET",
        "Access-Control-Allow-Headers": "Content-Type",
    }
    async with ModelServer([make_double_model()], rest_api_enable_cors_support=True) as srv:
        answers = [
            await _post(http, srv, PREDICT, b'{"instances": [1.0]}'),  # 200
            await _post(http, srv, "/v1/models/missing:predict", b'{"instances": [1.0]}'),  # 404
            await _post(http, srv, PREDICT, b"{not json"),  # 400
        ]
        async with asyncio.timeout(TIMEOUT), http.get(srv.rest_url + "/v1/models/double") as got:
            answers.append((got.status, dict(got.headers), await got.read()))
        for origin in ("https://example.com", ""):
            async with (
                asyncio.timeout(TIMEOUT),
                http.options(srv.rest_url + PREDICT, headers={"Origin": origin}) as pre,
            ):
                answers.append((pre.status, dict(pre.headers), await pre.read()))
        # libevent's own pages come from outside the API handler: no CORS headers.
        async with asyncio.timeout(TIMEOUT), http.get(srv.rest_url + "/elsewhere") as page:
            outside = dict(page.headers)
    assert [status for status, _, _ in answers] == [200, 404, 400, 200, 200, 400]
    for _, headers, _ in answers:
        assert {k: headers[k] for k in cors if k in headers} == cors
    assert answers[0][1]["Content-Type"] == "application/json"
    assert not {h for h in outside if h.startswith("Access-Control-")}


async def test_prometheus_counters_when_configured(
    http: ClientSession, make_double_model: Callable[..., PythonModel]
) -> None:
    async with ModelServer([make_double_model()], prometheus_path="/metrics") as srv:
        for _ in range(2):
            status, _, _ = await _post(http, srv, PREDICT, b'{"instances": [1.0]}')
            assert status == 200
        async with asyncio.timeout(TIMEOUT), http.get(srv.rest_url + "/metrics") as resp:
            text = (await resp.read()).decode()
    assert resp.status == 200
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="double",status="OK"} 2' in text
