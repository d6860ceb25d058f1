"""TF Serving's Prometheus page and libevent's own answers, over real sockets."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession

from tests.emulator.conftest import double_model
from tfs_async import _grpc_methods as _methods
from tfs_async._proto import predict_pb2
from tfs_async.codec.tensor import encode_tensor
from tfs_async.testing import ModelServer
from tfs_async.testing.cli import READY_PREFIX
from tfs_async.testing.monitoring import Histogram, Metrics, prometheus_name
from tfs_async.testing.server_config import DEFAULT_PROMETHEUS_PATH

TIMEOUT = 30.0  # every await here is bounded by this many seconds

LIBEVENT_404 = (
    b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n"
    b"<H1>Not Found</H1>\n</BODY></HTML>\n"
)
LIBEVENT_501 = (
    b"<HTML><HEAD>\n<TITLE>501 Not Implemented</TITLE>\n</HEAD><BODY>\n"
    b"<H1>Not Implemented</H1>\n</BODY></HTML>\n"
)


@pytest_asyncio.fixture
async def monitored() -> AsyncIterator[ModelServer]:
    async with ModelServer([double_model()], prometheus_path=DEFAULT_PROMETHEUS_PATH) as server:
        yield server


async def _grpc_predict(server: ModelServer, model: str) -> grpc.StatusCode:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(encode_tensor(np.asarray([1.0, 2.0], dtype=np.float32)))
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(
            _methods.PREDICT,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        try:
            await call(request, timeout=TIMEOUT)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def _page(http: ClientSession, url: str) -> tuple[int, dict[str, str], str]:
    async with asyncio.timeout(TIMEOUT), http.get(url) as resp:
        return resp.status, dict(resp.headers), (await resp.read()).decode()


async def test_page_counts_both_transports_in_tf_servings_format(
    monitored: ModelServer, http: ClientSession
) -> None:
    assert await _grpc_predict(monitored, "double") == grpc.StatusCode.OK
    assert await _grpc_predict(monitored, "double") == grpc.StatusCode.OK
    assert await _grpc_predict(monitored, "nope") == grpc.StatusCode.NOT_FOUND
    body = json.dumps({"instances": [1.0]}).encode()
    async with asyncio.timeout(TIMEOUT):
        async with http.post(monitored.rest_url + "/v1/models/double:predict", data=body) as r:
            assert r.status == 200
        async with http.get(monitored.rest_url + "/v1/models/double") as r:
            assert r.status == 200
    status, headers, page = await _page(http, monitored.rest_url + DEFAULT_PROMETHEUS_PATH)
    assert status == 200
    assert headers["Content-Type"] == "text/plain"
    lines = page.splitlines()
    assert not any(line.startswith("# HELP") for line in lines)
    counter = ":tensorflow:serving:request_count"
    assert f'{counter}{{model_name="double",status="OK"}} 4' in lines
    assert f'{counter}{{model_name="nope",status="NOT_FOUND"}} 1' in lines
    latency = ":tensorflow:serving:request_latency"
    types = [line for line in lines if line.startswith("# TYPE")]
    assert types == [f"# TYPE {counter} counter", f"# TYPE {latency} histogram"]
    for labels, count in (
        ('model_name="double",API="Predict",entrypoint="GRPC"', 2),
        ('model_name="double",API="predict",entrypoint="REST"', 1),
        ('model_name="double",API="",entrypoint="REST"', 1),
    ):
        assert f"{latency}_count{{{labels}}} {count}" in lines
        buckets = [line for line in lines if line.startswith(f"{latency}_bucket{{{labels},")]
        assert len(buckets) == 34  # Exponential(10, 1.8, 33) plus the overflow bucket
        assert buckets[0].startswith(f'{latency}_bucket{{{labels},le="10"}} ')
        assert buckets[-1] == f'{latency}_bucket{{{labels},le="+Inf"}} {count}'
        cumulative = [int(line.rsplit(" ", 1)[1]) for line in buckets]
        assert cumulative == sorted(cumulative)


async def test_server_without_monitoring_has_no_page(http: ClientSession) -> None:
    async with ModelServer([double_model()]) as server:
        status, _, _ = await _page(http, server.rest_url + DEFAULT_PROMETHEUS_PATH)
    assert status == 404


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ("prometheus_config { enable: true }", DEFAULT_PROMETHEUS_PATH),
        ('prometheus_config { enable: true path: "/m" }', "/m"),
        ("prometheus_config { enable: false }", None),
    ],
)
async def test_monitoring_config_file_sets_the_path(
    http: ClientSession, models_dir: Path, tmp_path: Path, config: str, path: str | None
) -> None:
    config_file = tmp_path / "monitoring.config"
    config_file.write_text(config)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tfs_async.testing",
        "--port=0",
        "--rest_api_port=0",
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        f"--monitoring_config_file={config_file}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith(READY_PREFIX), line
        rest = f"http://127.0.0.1:{json.loads(line[len(READY_PREFIX) :])['rest_port']}"
        status, _, page = await _page(http, rest + (path or DEFAULT_PROMETHEUS_PATH))
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            await proc.communicate()
    if path is None:
        assert status == 404
    else:
        assert status == 200
        assert page == "\n"  # nothing counted yet: TF's page is one empty line too


def test_histogram_buckets_count_values_below_each_limit() -> None:
    metrics = Metrics()
    for value in (9.99, 10.0, 1e12):
        metrics.request_latency("m", "Predict", "GRPC", value)
    lines = metrics.render().splitlines()
    prefix = ':tensorflow:serving:request_latency_bucket{model_name="m",API="Predict",'
    assert f'{prefix}entrypoint="GRPC",le="10"}} 1' in lines  # 10.0 is not below 10
    assert f'{prefix}entrypoint="GRPC",le="18"}} 2' in lines
    assert f'{prefix}entrypoint="GRPC",le="+Inf"}} 3' in lines
    histogram = Histogram((1.0, 2.0))
    histogram.add(2.0)
    assert histogram.buckets == [0, 0, 1]


def test_names_and_label_values_are_sanitised_like_tf() -> None:
    assert prometheus_name("/tensorflow/serving/request_count") == (
        ":tensorflow:serving:request_count"
    )
    assert prometheus_name("9lives/x-y") == "_9lives:x:y"
    metrics = Metrics()
    metrics.count_request('we"ird\\', "OK")
    assert 'model_name="we\\"ird\\\\"' in metrics.render()


# -- what libevent itself answers --------------------------------------------------------


async def test_rest_answers_carry_no_server_header(
    monitored: ModelServer, http: ClientSession
) -> None:
    for path in ("/v1/models/double", "/elsewhere", DEFAULT_PROMETHEUS_PATH):
        _, headers, _ = await _page(http, monitored.rest_url + path)
        assert "Server" not in headers, path


# libevent knows TRACE and refuses it; PROPFIND it does not know at all. (A method no
# HTTP parser knows, such as FOO, gets aiohttp's parser error, a 400, instead.)
@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
async def test_methods_libevent_refuses_get_its_501_page(
    monitored: ModelServer, http: ClientSession, method: str
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        http.request(method, monitored.rest_url + "/v1/models/double") as resp,
    ):
        body = await resp.read()
    assert resp.status == 501
    assert body == LIBEVENT_501
    assert resp.headers["Content-Type"] == "text/html"
    assert resp.headers["Connection"] == "close"


async def test_paths_outside_v1_get_libevents_404_page(
    monitored: ModelServer, http: ClientSession
) -> None:
    status, headers, page = await _page(http, monitored.rest_url + "/v2/models/double")
    assert (status, page.encode()) == (404, LIBEVENT_404)
    assert headers["Content-Type"] == "text/html"
    assert headers["Connection"] == "close"
