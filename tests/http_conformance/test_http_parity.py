"""Both HTTP transports give callers the same hooks: retry hints, pool waits, size limits,
the wait for a server, large answers and the warning for a client never closed."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Callable

import numpy as np
import pytest

from tests.http_conformance.conftest import TRANSPORTS
from tests.support.client import STEP, within
from tests.support.raw_http import (
    STATUS_BODY,
    Request,
    answer_with,
    chunked,
    response,
    scripted_server,
)
from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    MessageTooLargeError,
    ResourceExhaustedError,
    TFServingError,
    UnavailableError,
)
from tfs_async.observe import Observer, PoolWait
from tfs_async.transport import CallOptions
from tfs_async.transport.http import HttpTransport
from tfs_async.types import ModelSpec, PredictRequest

MakeTransport = Callable[..., HttpTransport]
OPTIONS = CallOptions(timeout=STEP)
MODEL = ModelSpec("m")
OVERLOADED = b'{"error": "overloaded"}'


async def status_error(transport: HttpTransport) -> TFServingError:
    """The error one status call raises."""
    with pytest.raises(TFServingError) as caught:
        async with within(STEP):
            await transport.get_model_status(MODEL, OPTIONS)
    return caught.value


@pytest.mark.parametrize(
    ("status", "hint", "expected"),
    [
        ("429 Too Many Requests", "7", 7.0),
        ("503 Service Unavailable", "0.5", 0.5),
        ("503 Service Unavailable", "Wed, 21 Oct 2015 07:28:05 GMT", 0.0),  # in the past
        ("503 Service Unavailable", "soon", None),
        ("500 Internal Server Error", "7", None),  # a hint only counts on 429 and 503
    ],
)
async def test_retry_after_is_kept_on_the_error(
    make_transport: MakeTransport, status: str, hint: str, expected: float | None
) -> None:
    answer = response(OVERLOADED, status=status, headers=(("Retry-After", hint),))
    async with scripted_server(answer_with(answer)) as (url, _):
        transport = make_transport(url)
        try:
            error = await status_error(transport)
        finally:
            await transport.aclose()
    assert error.http_status == int(status.split()[0])
    assert error.retry_after == expected
    if status.startswith("429"):
        assert isinstance(error, ResourceExhaustedError)
    elif status.startswith("503"):
        assert isinstance(error, UnavailableError)


class PoolWaits(Observer):
    """Writes down the waits for a pooled connection."""

    def __init__(self) -> None:
        self.waits: list[PoolWait] = []

    def pool_wait(self, event: PoolWait) -> None:
        self.waits.append(event)


async def test_a_wait_for_a_pooled_connection_is_told_to_the_observer(
    make_transport: MakeTransport,
) -> None:
    gate = asyncio.Event()

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.path.endswith("/slow"):
            async with within(STEP):
                await gate.wait()
        writer.write(response())
        return True

    async with scripted_server(answer) as (url, seen):
        transport = make_transport(url, pool_size=1)
        observer = transport.observer = PoolWaits()
        try:
            holder = asyncio.create_task(transport.get_model_status(ModelSpec("slow"), OPTIONS))
            async with within(STEP), seen.changed:
                await seen.changed.wait_for(lambda: len(seen.requests) == 1)
            with pytest.raises(DeadlineExceededError, match="no free connection"):
                await transport.get_model_status(MODEL, CallOptions(timeout=0.05))
            waiting = asyncio.create_task(transport.get_model_status(MODEL, OPTIONS))
            gate.set()
            async with within(STEP):
                await asyncio.gather(holder, waiting)
        finally:
            await transport.aclose()
    assert [(w.protocol, w.target, w.acquired) for w in observer.waits] == [
        ("http", url, False),
        ("http", url, True),
    ]
    assert observer.waits[0].seconds >= 0.05
    assert observer.waits[1].seconds >= 0


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_an_answer_over_max_message_size_is_message_too_large(
    make_transport: MakeTransport, framing: str
) -> None:
    body = b'{"outputs": [' + b",".join([b"0.5"] * 5000) + b"]}"
    answer = response(body) if framing == "length" else chunked(body, [4096] * 3)
    async with scripted_server(answer_with(answer)) as (url, _):
        transport = make_transport(url, max_message_size=10_000)
        request = PredictRequest(MODEL, {"x": np.ones(3, np.float32)})
        try:
            with pytest.raises(MessageTooLargeError) as caught:
                async with within(STEP):
                    await transport.predict(request, OPTIONS)
        finally:
            await transport.aclose()
    assert caught.value.limit == 10_000
    assert caught.value.size == (len(body) if framing == "length" else None)
    assert "max_message_size" in caught.value.message
    assert caught.value.model == MODEL


async def test_wait_for_server_finds_a_listening_server(make_transport: MakeTransport) -> None:
    async with scripted_server(answer_with(response())) as (url, _):
        transport = make_transport(url)
        try:
            async with within(STEP):
                await transport.get_model_status(MODEL, OPTIONS)
                assert await transport.wait_for_server(STEP) is True
        finally:
            await transport.aclose()


def numbers_answer(value: float, count: int) -> bytes:
    """A predict answer of ``count`` copies of ``value`` (``count * 4`` bytes and more)."""
    return response(b'{"outputs": [' + b",".join([b"%.1f" % value] * count) + b"]}")


async def test_large_answers_then_a_small_one_on_one_connection(
    make_transport: MakeTransport,
) -> None:
    """Bodies long enough to be read into a buffer of their own, written in pieces."""
    sizes = [200_000, 30_000, 200_000, 3]

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        whole = numbers_answer(len(seen.requests), sizes[len(seen.requests) - 1])
        for start in range(0, len(whole), 50_000):
            writer.write(whole[start : start + 50_000])
            await writer.drain()
        return True

    async with scripted_server(answer) as (url, seen):
        transport = make_transport(url, pool_size=1)
        request = PredictRequest(MODEL, {"x": np.ones(3, np.float32)})
        try:
            async with within(STEP):
                results = [await transport.predict(request, OPTIONS) for _ in sizes]
        finally:
            await transport.aclose()
    assert seen.opened == 1
    for i, (result, size) in enumerate(zip(results, sizes, strict=True)):
        np.testing.assert_array_equal(
            next(iter(result.values())), np.full(size, i + 1.0, np.float32)
        )


async def test_concurrent_large_answers_each_reach_their_caller(
    make_transport: MakeTransport,
) -> None:
    """Many large answers over few connections: none is overwritten by the next one."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        caller = int(request.path.split("/")[3].split(":")[0][1:])
        writer.write(numbers_answer(caller, 100_000 + caller * 1000))
        return True

    async with scripted_server(answer) as (url, _):
        transport = make_transport(url, pool_size=3)

        async def call(i: int) -> np.ndarray:
            request = PredictRequest(ModelSpec(f"m{i}"), {"x": np.ones(3, np.float32)})
            result = await transport.predict(request, OPTIONS)
            return next(iter(result.values()))

        try:
            async with within(STEP):
                results = await asyncio.gather(*(call(i) for i in range(12)))
        finally:
            await transport.aclose()
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, np.full(100_000 + i * 1000, float(i), np.float32))


async def test_a_large_answer_cut_short_is_a_connection_failure(
    make_transport: MakeTransport,
) -> None:
    whole = numbers_answer(1, 200_000)

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(whole[: len(whole) // 2])
        return False

    async with scripted_server(answer) as (url, seen):
        transport = make_transport(url, pool_size=1)
        request = PredictRequest(MODEL, {"x": np.ones(3, np.float32)})
        try:
            with pytest.raises(ConnectionFailedError):
                async with within(STEP):
                    await transport.predict(request, OPTIONS)
        finally:
            await transport.aclose()
    assert len(seen.requests) == 1  # part of the answer came: not sent again


async def test_an_answer_stays_intact_while_its_caller_holds_it(
    make_transport: MakeTransport,
) -> None:
    """A body read into a buffer is not reused for the next answer until it is let go."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(numbers_answer(len(seen.requests), 100_000))
        return True

    async with scripted_server(answer) as (url, seen):
        transport = make_transport(url, pool_size=1)
        path = transport._url(MODEL, ":predict")
        try:
            async with within(STEP):
                first = await transport._exchange("POST", path, b"{}", OPTIONS, MODEL)
                kept = bytes(first)
                second = await transport._exchange("POST", path, b"{}", OPTIONS, MODEL)
        finally:
            await transport.aclose()
    assert bytes(first) == kept
    assert bytes(second) != kept
    assert bytes(second).startswith(b'{"outputs": [2.0,')


UNCLOSED = textwrap.dedent(
    """
    import asyncio, sys
    from tfs_async import Client
    from tfs_async.testing import ModelServer
    from tfs_async.testing.half_plus_two import half_plus_two_model

    async def main(kind):
        server = ModelServer([half_plus_two_model()], grpc_port=None)
        await server.start()
        client = Client(server.rest_url, http_transport=kind, timeout=10.0)
        [status] = await client.status("half_plus_two")
        print("status", status.state.name)
        await server.stop()
        return client  # kept alive past its loop, never closed

    kind, how = sys.argv[1], sys.argv[2]
    if how == "run":
        asyncio.run(main(kind))
    else:
        loop = asyncio.new_event_loop()
        kept = loop.run_until_complete(main(kind))
        loop.close()
    """
)
NOISE = ("Task was destroyed", "nclosed", "Exception ignored", "Traceback")


@pytest.mark.parametrize("how", ["run", "loop"])
def test_a_client_never_closed_is_released_with_at_most_one_warning(
    http_kind: str, how: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", UNCLOSED, http_kind, how],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "status AVAILABLE" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "never closed" in line]
    if how == "run":
        # asyncio.run ends the loop: the client's connections are closed with it, quietly.
        assert done.stderr.strip() == ""
    else:
        assert len(warnings) == 1, done.stderr
        assert "ResourceWarning" in warnings[0]
        assert "await client.close()" in warnings[0]
    assert not any(noise in done.stderr for noise in NOISE), done.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="the optional uvloop package is missing"
)
def test_calls_under_uvloop(http_kind: str) -> None:
    """uvloop's transports are not asyncio's classes: small, large and chunked answers."""
    import uvloop

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.path.endswith(":predict"):
            writer.write(numbers_answer(2, 100_000))
        else:
            writer.write(chunked(STATUS_BODY, [7, 30]))
        return True

    async def main() -> tuple[int, np.ndarray]:
        async with scripted_server(answer) as (url, _):
            transport = TRANSPORTS[http_kind](url, pool_size=1)
            request = PredictRequest(MODEL, {"x": np.ones(3, np.float32)})
            try:
                async with within(STEP):
                    [status] = await transport.get_model_status(MODEL, OPTIONS)
                    result = await transport.predict(request, OPTIONS)
            finally:
                await transport.aclose()
        return status.version, next(iter(result.values()))

    loop = uvloop.new_event_loop()
    try:
        version, outputs = loop.run_until_complete(main())
    finally:
        loop.close()
    assert version == 3
    np.testing.assert_array_equal(outputs, np.full(100_000, 2.0, np.float32))
