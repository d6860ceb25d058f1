"""A keep-alive connection the server closed while it sat in the HTTP pool.

A raw asyncio HTTP/1.1 server (real sockets, no framework) answers the first
request on each connection with ``Connection: keep-alive``, then treats the
next one as a server whose idle timeout fired just as it arrived: it closes the
connection without answering (or, in one test, after part of an answer). The
client's next call must succeed on a fresh connection, re-sent once, and only
when nothing of the answer arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession

from tests.support.client import STEP, within
from tfs_async.client import Client
from tfs_async.errors import ConnectionFailedError, ResponseDecodeError
from tfs_async.testing import ModelServer
from tfs_async.testing.half_plus_two import half_plus_two_model

STATUS_BODY = (
    b'{"model_version_status": [{"version": "1", "state": "AVAILABLE",'
    b' "status": {"error_code": "OK", "error_message": ""}}]}'
)
PREDICT_BODY = b'{"outputs": [2.5, 3.0, 4.5]}'
X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}


@pytest_asyncio.fixture
async def metadata_body() -> AsyncIterator[bytes]:
    """half_plus_two's metadata answer, as the emulator gives it (the client needs it for REST)."""
    server = ModelServer([half_plus_two_model()], grpc_port=None)
    async with server, ClientSession() as session, within(STEP):
        url = f"{server.rest_url}/v1/models/half_plus_two/metadata"
        async with session.get(url) as response:
            body = await response.read()
    yield body


@dataclass
class IdleClosingServer:
    """Answers ``answered_per_connection`` requests per connection, then closes on the next."""

    metadata: bytes = b"{}"
    answered_per_connection: int = 1
    partial_answer: bool = False
    port: int = 0
    #: (connection number, request line) of every request received.
    requests: list[tuple[int, str]] = field(default_factory=list)
    _connections: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        number = self._connections
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            answered = 0
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                self.requests.append((number, lines[0]))
                if answered >= self.answered_per_connection:
                    if self.partial_answer:
                        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{")
                        await writer.drain()
                    return
                answered += 1
                target = lines[0].split(" ")[1]
                if target.endswith("/metadata"):
                    body = self.metadata
                elif target.endswith(":predict"):
                    body = PREDICT_BODY
                else:
                    body = STATUS_BODY
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Connection: keep-alive\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


@contextlib.asynccontextmanager
async def serving(server: IdleClosingServer) -> AsyncIterator[IdleClosingServer]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = int(listener.sockets[0].getsockname()[1])
    try:
        yield server
    finally:
        listener.close()
        for task in list(server._tasks):
            task.cancel()
        await asyncio.gather(*server._tasks, return_exceptions=True)
        await listener.wait_closed()


async def test_a_closed_pooled_connection_is_replaced_and_the_call_succeeds(
    metadata_body: bytes,
) -> None:
    # max_retries=0: the re-send is the transport's, not the retry policy's.
    async with (
        serving(IdleClosingServer(metadata_body)) as server,
        Client(
            f"http://127.0.0.1:{server.port}", timeout=STEP, max_retries=0, pool_size=1
        ) as client,
    ):
        for _ in range(3):
            async with within(STEP):
                statuses = await client.status("half_plus_two")
            assert [s.version for s in statuses] == [1]
            async with within(STEP):
                result = await client.predict("half_plus_two", X)
            assert result.output.tolist() == [2.5, 3.0, 4.5]
    # Each connection answers once, then closes on the next request, which is sent
    # again on a fresh connection: every call succeeded, each unanswered request
    # went out twice, and nothing was sent a third time.
    lines = [line.split(" ")[0] + " " + line.split(" ")[1] for _, line in server.requests]
    assert [number for number, _ in server.requests] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    # 3 predicts (POST, re-sent by the transport; a predict fetches no metadata) and
    # 3 status calls (GET, re-sent by aiohttp): the first GET alone was answered at once.
    assert lines.count("POST /v1/models/half_plus_two:predict") == 6
    assert lines.count("GET /v1/models/half_plus_two") == 5
    assert len(lines) == 11


async def test_a_request_never_answered_is_sent_again_once_only(metadata_body: bytes) -> None:
    async with (
        serving(IdleClosingServer(metadata_body)) as server,
        Client(f"http://127.0.0.1:{server.port}", timeout=STEP, max_retries=0) as client,
    ):
        async with within(STEP):
            await client.metadata("half_plus_two")
        server.answered_per_connection = 0
        with pytest.raises(ConnectionFailedError) as caught:
            async with within(STEP):
                await client.predict("half_plus_two", X)
    posts = [line for _, line in server.requests if line.startswith("POST")]
    assert len(posts) == 2
    assert "127.0.0.1" in caught.value.message


async def test_a_partly_answered_request_is_not_sent_again(metadata_body: bytes) -> None:
    async with (
        serving(IdleClosingServer(metadata_body, partial_answer=True)) as server,
        Client(
            f"http://127.0.0.1:{server.port}", timeout=STEP, max_retries=0, pool_size=1
        ) as client,
    ):
        async with within(STEP):
            await client.metadata("half_plus_two")
        with pytest.raises((ConnectionFailedError, ResponseDecodeError)):
            async with within(STEP):
                await client.predict("half_plus_two", X)
    # The predict got the start of an answer: the transport did not send it again.
    assert [number for number, _ in server.requests] == [1, 1]
