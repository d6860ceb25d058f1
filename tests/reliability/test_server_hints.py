"""Overload: a server's retry hint (HTTP Retry-After, gRPC grpc-retry-pushback-ms) is read
from the wire and replaces the client's backoff; 429 / RESOURCE_EXHAUSTED back off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from aiohttp import web

from tests.support.client import STEP, within
from tfs_async import Client, ResourceExhaustedError, UnavailableError
from tfs_async._grpc_methods import GET_MODEL_STATUS
from tfs_async._proto import get_model_status_pb2
from tfs_async.retry import RetryPolicy

STATUS_JSON = (
    b'{"model_version_status": [{"version": "1", "state": "AVAILABLE",'
    b' "status": {"error_code": "OK", "error_message": ""}}]}'
)
# A backoff no test could sit through: a call that ends proves the hint set the wait.
GLACIAL = RetryPolicy(initial_backoff=3600.0, max_backoff=3600.0, jitter=0.0)


class Answers:
    """What a hand-written server answers, in order; the last one repeats."""

    def __init__(self, *answers: tuple[int, str | None]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def next(self) -> tuple[int, str | None]:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest_asyncio.fixture
async def http_server() -> AsyncIterator[tuple[str, Callable[[Answers], None]]]:
    plan: dict[str, Answers] = {}

    async def status(request: web.Request) -> web.Response:
        code, hint = plan["answers"].next()
        if code == 200:
            return web.Response(body=STATUS_JSON, content_type="application/json")
        headers = {"Retry-After": hint} if hint is not None else {}
        return web.json_response({"error": "overloaded"}, status=code, headers=headers)

    app = web.Application()
    app.router.add_get("/v1/models/m", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def use(answers: Answers) -> None:
        plan["answers"] = answers

    try:
        yield f"http://127.0.0.1:{port}", use
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def grpc_server() -> AsyncIterator[tuple[str, Callable[[Answers], None]]]:
    plan: dict[str, Answers] = {}

    async def status(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        code, hint = plan["answers"].next()
        if code == 200:
            return get_model_status_pb2.GetModelStatusResponse().SerializeToString()
        if hint is not None:
            context.set_trailing_metadata((("grpc-retry-pushback-ms", hint),))
        grpc_code = (
            grpc.StatusCode.RESOURCE_EXHAUSTED if code == 429 else grpc.StatusCode.UNAVAILABLE
        )
        await context.abort(grpc_code, "overloaded")
        raise AssertionError("unreachable")

    service, method = GET_MODEL_STATUS.strip("/").split("/")
    handler = grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(status)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    def use(answers: Answers) -> None:
        plan["answers"] = answers

    try:
        yield f"grpc://127.0.0.1:{port}", use
    finally:
        await server.stop(None)


@pytest.fixture(params=["grpc", "http"])
def hinting(
    request: pytest.FixtureRequest,
) -> tuple[str, Callable[[Answers], None], str]:
    target, use = request.getfixturevalue(f"{request.param}_server")
    # gRPC's hint is in milliseconds, HTTP's in seconds.
    return target, use, str(request.param)


def _hint(protocol: str, seconds: float) -> str:
    return str(int(seconds * 1000)) if protocol == "grpc" else f"{seconds:g}"


@pytest.mark.parametrize("code", [429, 503])
async def test_the_hint_is_read_from_the_wire(
    hinting: tuple[str, Callable[[Answers], None], str], code: int
) -> None:
    target, use, protocol = hinting
    use(Answers((code, _hint(protocol, 7.0))))
    async with Client(target, timeout=STEP, max_retries=0) as client, within(STEP):
        with pytest.raises((ResourceExhaustedError, UnavailableError)) as info:
            await client.status("m")
    assert info.value.retry_after == pytest.approx(7.0)
    expected = ResourceExhaustedError if code == 429 else UnavailableError
    assert isinstance(info.value, expected)


@pytest.mark.parametrize("code", [429, 503])
async def test_a_short_hint_replaces_the_backoff(
    hinting: tuple[str, Callable[[Answers], None], str], code: int
) -> None:
    target, use, protocol = hinting
    answers = Answers((code, _hint(protocol, 0.01)), (200, None))
    use(answers)
    async with Client(target, timeout=STEP, max_retries=1, retry=GLACIAL) as client, within(STEP):
        statuses = await client.status("m")
    assert answers.calls == 2
    assert isinstance(statuses, list)


async def test_a_hint_longer_than_the_deadline_ends_the_call(
    hinting: tuple[str, Callable[[Answers], None], str],
) -> None:
    target, use, protocol = hinting
    answers = Answers((429, _hint(protocol, 30.0)), (200, None))
    use(answers)
    async with Client(target, timeout=2.0, max_retries=3) as client, within(STEP):
        with pytest.raises(ResourceExhaustedError):
            await client.status("m")
    assert answers.calls == 1


async def test_without_a_hint_429_backs_off_and_retries(
    hinting: tuple[str, Callable[[Answers], None], str],
) -> None:
    target, use, _ = hinting
    answers = Answers((429, None), (429, None), (200, None))
    use(answers)
    fast = RetryPolicy(initial_backoff=0.001, max_backoff=0.002, jitter=0.0)
    async with Client(target, timeout=STEP, max_retries=2, retry=fast) as client, within(STEP):
        await client.status("m")
    assert answers.calls == 3
