"""A scripted HTTP/1.1 server on 127.0.0.1 that answers with exactly the bytes a test gives.

Each request is read in full (head and ``Content-Length`` body), recorded, and
handed to the test's ``answer`` coroutine, which writes whatever bytes it wants
(good answers, broken framing, nothing at all) and says whether to keep reading
requests on that connection.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

STATUS_BODY = (
    b'{"model_version_status": [{"version": "3", "state": "AVAILABLE",'
    b' "status": {"error_code": "OK", "error_message": ""}}]}'
)


@dataclass
class Request:
    """One request as the server read it."""

    connection: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Seen:
    """What the server saw: every request, connections opened and closed."""

    requests: list[Request] = field(default_factory=list)
    opened: int = 0
    closed: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


Answer = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]


def response(
    body: bytes = STATUS_BODY,
    *,
    status: str = "200 OK",
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    length: bool = True,
) -> bytes:
    """A whole HTTP/1.1 answer (``length``: with a Content-Length header)."""
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body: bytes, sizes: list[int]) -> bytes:
    """``body`` as a chunked answer, cut into chunks of ``sizes`` (the rest in one chunk)."""
    pieces, rest = [], body
    for size in sizes:
        if not rest:
            break
        pieces.append(rest[:size])
        rest = rest[size:]
    if rest:
        pieces.append(rest)
    framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    return head + framed


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return Request(connection, method, path, headers, body)


@asynccontextmanager
async def scripted_server(answer: Answer) -> AsyncIterator[tuple[str, Seen]]:
    """Serve on 127.0.0.1; yields the base URL and what the server saw."""
    seen = Seen()

    async def note(what: str) -> None:
        async with seen.changed:
            setattr(seen, what, getattr(seen, what) + 1)
            seen.changed.notify_all()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await note("opened")
        connection = seen.opened
        try:
            while True:
                request = await _read_request(reader, connection)
                if request is None:
                    break
                async with seen.changed:
                    seen.requests.append(request)
                    seen.changed.notify_all()
                keep = await answer(request, writer)
                await writer.drain()
                if not keep:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
            await note("closed")

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


def answer_with(*payloads: bytes, keep: bool = True) -> Answer:
    """Answer the n-th request with ``payloads[n]`` (the last one repeats)."""
    count = 0

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        nonlocal count
        writer.write(payloads[min(count, len(payloads) - 1)])
        count += 1
        return keep

    return answer
