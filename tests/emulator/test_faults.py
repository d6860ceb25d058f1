"""Fault injection: each fault kind over real gRPC and REST sockets; determinism under a seed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import aiohttp
import grpc
import grpc.aio
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import get_model_status_pb2, predict_pb2, types_pb2
from tfs_async.errors import StatusCode
from tfs_async.testing import (
    Fault,
    FaultPlan,
    ModelServer,
    PythonModel,
    exponential_latency,
    fault_from_dict,
    uniform_latency,
)

TIMEOUT = 10.0  # every await here is bounded by this many seconds
PREDICT_BODY = b'{"instances": [1.0, 2.0]}'


@pytest_asyncio.fixture
async def faulty(make_double_model: Callable[..., PythonModel]) -> AsyncIterator[ModelServer]:
    async with ModelServer([make_double_model()], faults=FaultPlan(seed=3)) as srv:
        yield srv


def _plan(srv: ModelServer) -> FaultPlan:
    assert srv.faults is not None
    return srv.faults


def _predict_request(model: str = "double") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    x = request.inputs["x"]
    x.dtype = types_pb2.DT_FLOAT
    x.tensor_shape.dim.add(size=2)
    x.float_val.extend([1.0, 2.0])
    return request


async def _grpc_predict(
    srv: ModelServer, model: str = "double", timeout: float = TIMEOUT
) -> predict_pb2.PredictResponse:
    async with grpc.aio.insecure_channel(srv.grpc_target) as channel:
        call = channel.unary_unary(
            _methods.PREDICT,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        response: predict_pb2.PredictResponse = await call(_predict_request(model), timeout=timeout)
        return response


async def _grpc_code(srv: ModelServer, model: str = "double", timeout: float = TIMEOUT) -> str:
    try:
        await _grpc_predict(srv, model, timeout)
    except grpc.aio.AioRpcError as err:
        return str(err.code().name)
    return "OK"


async def _rest_predict(srv: ModelServer, model: str = "double") -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
        session.post(f"{srv.rest_url}/v1/models/{model}:predict", data=PREDICT_BODY) as resp,
    ):
        return resp.status, await resp.read()


# -- the plan itself -----------------------------------------------------------


def _decisions(plan: FaultPlan, n: int) -> list[tuple[float, bool, bool, bool]]:
    out = []
    for i in range(n):
        d = plan.decide("grpc", "predict" if i % 2 else "regress", "m")
        out.append((d.delay, d.stall, d.drop, d.error is not None))
    return out


def _rules() -> list[Fault]:
    return [
        Fault(method="predict", latency=uniform_latency(0.0, 1.0), error_rate=0.3),
        Fault(drop_rate=0.2, stall_rate=0.1, latency=exponential_latency(0.01, cap=0.5)),
    ]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_same_seed_same_decisions(seed: int) -> None:
    first = _decisions(FaultPlan(_rules(), seed=seed), 60)
    second = _decisions(FaultPlan(_rules(), seed=seed), 60)
    assert first == second


def test_reseed_replays_the_sequence() -> None:
    plan = FaultPlan([Fault(error_rate=0.5, times=10)], seed=11)
    first = _decisions(plan, 40)
    plan.reseed(11)
    assert _decisions(plan, 40) == first
    assert sum(failed for *_, failed in first) == 10  # `times` caps the failures


def test_different_seeds_differ() -> None:
    sequences = {tuple(_decisions(FaultPlan(_rules(), seed=s), 40)) for s in range(5)}
    assert len(sequences) == 5


def test_error_rate_is_a_rate() -> None:
    plan = FaultPlan([Fault(error_rate=0.25)], seed=5)
    failures = sum(plan.decide("rest", "predict", "m").error is not None for _ in range(4000))
    assert 800 < failures < 1200


def test_selectors() -> None:
    plan = FaultPlan([Fault(method="predict", model="a", protocol="rest", error_rate=1.0)])
    assert plan.decide("rest", "predict", "a").error is not None
    assert plan.decide("grpc", "predict", "a").error is None
    assert plan.decide("rest", "classify", "a").error is None
    assert plan.decide("rest", "predict", "b").error is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "Predict"}, "unknown method"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"latency": -1.0}, "latency"),
        ({"code": StatusCode.OK}, "code OK"),
        ({"times": -1}, "times"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**kwargs)  # type: ignore[arg-type]


def test_drawn_latency_stays_in_range() -> None:
    rng = random.Random(0)
    draw = uniform_latency(0.1, 0.2)
    assert all(0.1 <= draw(rng) <= 0.2 for _ in range(100))
    capped = exponential_latency(1.0, cap=0.3)
    assert all(0 <= capped(rng) <= 0.3 for _ in range(100))


# -- over the wire -------------------------------------------------------------


async def test_injected_error_grpc_and_rest(faulty: ModelServer) -> None:
    _plan(faulty).add(Fault(error_rate=1.0, code=StatusCode.RESOURCE_EXHAUSTED, message="busy"))
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _grpc_predict(faulty)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.details() == "busy"
        status, body = await _rest_predict(faulty)
    assert status == 429
    assert body == b'{\n    "error": "busy"\n}' or b'"busy"' in body


async def test_fail_n_times_then_succeed(faulty: ModelServer) -> None:
    rule = _plan(faulty).add(Fault(method="predict", error_rate=1.0, times=2))
    async with asyncio.timeout(TIMEOUT):
        codes = [await _grpc_code(faulty) for _ in range(3)]
    assert codes == ["UNAVAILABLE", "UNAVAILABLE", "OK"]
    assert rule.spent


async def test_faults_target_one_model(faulty: ModelServer) -> None:
    _plan(faulty).add(Fault(model="other", error_rate=1.0))
    async with asyncio.timeout(TIMEOUT):
        assert await _grpc_code(faulty, "double") == "OK"
        # The fault hits before the core: even an unknown model gets the injected code.
        assert await _grpc_code(faulty, "other") == "UNAVAILABLE"


async def test_latency_outlasts_a_short_deadline(faulty: ModelServer) -> None:
    # The delay is observable as a deadline miss; no timing is asserted.
    _plan(faulty).add(Fault(latency=30.0, times=1))
    async with asyncio.timeout(TIMEOUT):
        assert await _grpc_code(faulty, timeout=0.2) == "DEADLINE_EXCEEDED"
        assert await _grpc_code(faulty) == "OK"


async def test_dropped_connection_grpc(faulty: ModelServer) -> None:
    _plan(faulty).add(Fault(drop_rate=1.0, times=1))
    async with asyncio.timeout(TIMEOUT):
        assert await _grpc_code(faulty) == "UNAVAILABLE"
        assert await _grpc_code(faulty) == "OK"


async def test_dropped_connection_rest_closes_without_answer(faulty: ModelServer) -> None:
    _plan(faulty).add(Fault(drop_rate=1.0, times=1))
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", faulty.rest_port)
        writer.write(
            b"POST /v1/models/double:predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(PREDICT_BODY), PREDICT_BODY)
        )
        await writer.drain()
        assert await reader.read() == b""  # closed, not a single byte of response
        writer.close()
        await writer.wait_closed()
        status, _ = await _rest_predict(faulty)
    assert status == 200


async def test_stall_until_deadline_grpc(faulty: ModelServer) -> None:
    _plan(faulty).add(Fault(stall_rate=1.0, times=1))
    async with asyncio.timeout(TIMEOUT):
        assert await _grpc_code(faulty, timeout=0.2) == "DEADLINE_EXCEEDED"
        assert await _grpc_code(faulty) == "OK"


async def test_stall_until_released_rest(faulty: ModelServer) -> None:
    plan = _plan(faulty)
    plan.add(Fault(stall_rate=1.0, times=1))
    async with asyncio.timeout(TIMEOUT):
        pending = asyncio.create_task(_rest_predict(faulty))
        await plan.wait_stalled(1)
        assert not pending.done()
        plan.release_stalls()
        status, body = await pending
    assert status == 200
    assert b"predictions" in body


async def test_plan_can_be_replaced_while_running(faulty: ModelServer) -> None:
    async with asyncio.timeout(TIMEOUT):
        faulty.faults = FaultPlan([Fault(error_rate=1.0, code=StatusCode.ABORTED)])
        assert await _grpc_code(faulty) == "ABORTED"
        faulty.faults = None
        assert await _grpc_code(faulty) == "OK"


async def test_clear_restores_service(faulty: ModelServer) -> None:
    _plan(faulty).add(Fault(error_rate=1.0))
    async with asyncio.timeout(TIMEOUT):
        assert await _grpc_code(faulty) == "UNAVAILABLE"
        _plan(faulty).clear()
        response = await _grpc_predict(faulty)
    assert list(response.outputs["y"].float_val) == [3.0, 5.0]


async def test_seeded_failures_are_the_same_over_the_wire(
    make_double_model: Callable[..., PythonModel],
) -> None:
    async def run() -> list[str]:
        plan = FaultPlan([Fault(error_rate=0.5)], seed=42)
        async with ModelServer([make_double_model()], faults=plan, rest_port=None) as srv:
            return [await _grpc_code(srv) for _ in range(12)]

    async with asyncio.timeout(TIMEOUT):
        first, second = await run(), await run()
    assert first == second
    assert set(first) == {"OK", "UNAVAILABLE"}


async def test_restart_helper_drops_and_recovers(faulty: ModelServer) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        grpc.aio.insecure_channel(faulty.grpc_target) as channel,
    ):
        status = channel.unary_unary(
            _methods.GET_MODEL_STATUS,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=get_model_status_pb2.GetModelStatusResponse.FromString,
        )
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "double"
        await status(request, timeout=TIMEOUT)
        await faulty.suspend()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await status(request, timeout=TIMEOUT)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        await faulty.resume()
        # The same channel reconnects to the same port.
        response = await status(request, timeout=TIMEOUT, wait_for_ready=True)
    assert [s.version for s in response.model_version_status] == [1]


def test_faults_from_plain_data() -> None:
    fault = fault_from_dict(
        {"model": "m", "code": "deadline_exceeded", "error_rate": 1.0, "latency": 0.5}
    )
    assert fault.code == StatusCode.DEADLINE_EXCEEDED
    assert fault.latency == 0.5
    drawn = fault_from_dict({"latency": {"exponential": 0.1, "cap": 0.2}})
    assert callable(drawn.latency)
    assert 0 <= drawn.latency(random.Random(3)) <= 0.2
    for bad in ({"code": "NOPE"}, {"latency": {"normal": 1}}, {"colour": "red"}):
        with pytest.raises(ValueError, match=r"code|latency|bad fault"):
            fault_from_dict(bad)


async def test_stop_releases_stalled_calls(make_double_model: Callable[..., PythonModel]) -> None:
    plan = FaultPlan([Fault(stall_rate=1.0)])
    srv = ModelServer([make_double_model()], faults=plan)
    async with asyncio.timeout(TIMEOUT):
        await srv.start()
        pending = asyncio.create_task(_rest_predict(srv))
        await plan.wait_stalled(1)
        await srv.stop()
        status, _ = await pending
    assert status == 200  # released, then served within the shutdown grace
    assert plan.stalled == 0
