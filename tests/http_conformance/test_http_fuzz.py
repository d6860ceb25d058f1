"""Properties of the answer path, over real sockets: split points, bad framing, oversized headers.

Every example starts a scripted server that writes the answer in the pieces
hypothesis chose (each piece flushed on its own, ``TCP_NODELAY``), then closes
the connection; every call is bounded by a deadline, so a property that hung
would fail on it instead.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import socket
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.client import STEP, within
from tests.support.raw_http import Request, response, scripted_server
from tfs_async.errors import ConnectionFailedError, TFServingError
from tfs_async.transport import CallOptions
from tfs_async.transport.http import HttpTransport
from tfs_async.transport.http_lean import LeanHttpTransport
from tfs_async.types import ModelSpec, PredictRequest

TRANSPORTS: dict[str, type[HttpTransport]] = {"aiohttp": HttpTransport, "lean": LeanHttpTransport}
MODEL = ModelSpec("m")
# Short: a broken answer that leaves the client waiting fails on it rather than hanging.
OPTIONS = CallOptions(timeout=3.0)
FUZZ = settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def status_body(version: int) -> bytes:
    return (
        b'{"model_version_status": [{"version": "%d", "state": "AVAILABLE",'
        b' "status": {"error_code": "OK", "error_message": ""}}]}' % version
    )


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` split at ``points`` (offsets, any order)."""
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


async def exchange(kind: str, pieces: list[bytes], **options: Any) -> int:
    """Serve ``pieces`` as the answer to one status call; the version the client read."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        return False

    async with scripted_server(answer) as (url, _):
        transport = TRANSPORTS[kind](url, pool_size=1, **options)
        try:
            async with within(STEP):
                [status] = await transport.get_model_status(MODEL, OPTIONS)
        finally:
            await transport.aclose()
    return status.version


header_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).map(
    lambda s: "X-" + s
)
header_values = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=40
)


@dataclass
class Answer:
    """A valid answer's bytes, its version, and where plain JSON body bytes lie."""

    version: int
    whole: bytes
    json_spans: list[tuple[int, int]]

    def in_json(self, i: int) -> bool:
        return any(a <= i < b for a, b in self.json_spans)


@st.composite
def valid_answers(draw: st.DrawFn, gzip_ok: bool) -> Answer:
    version = draw(st.integers(0, 2**40))
    body = status_body(version)
    extra = draw(st.lists(st.tuples(header_names, header_values), max_size=5))
    headers = [("Content-Type", "application/json"), *extra]
    packed = gzip_ok and draw(st.booleans())
    if packed:
        body = gzip.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    framing = draw(st.sampled_from(["length", "chunked", "until-close"]))
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Connection", "close"))
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
    head += b"\r\n"
    if draw(st.booleans()):
        head = b"HTTP/1.1 100 Continue\r\n\r\n" + head
    whole, spans = head, []
    if framing == "chunked":
        sizes = draw(st.lists(st.integers(1, 64), max_size=8))
        rest = body
        for size in [*sizes, len(body)]:
            piece, rest = rest[:size], rest[size:]
            if not piece:
                break
            whole += b"%x\r\n" % len(piece)
            spans.append((len(whole), len(whole) + len(piece)))
            whole += piece + b"\r\n"
        whole += b"0\r\n\r\n"
    else:
        spans.append((len(whole), len(whole) + len(body)))
        whole += body
    return Answer(version, whole, [] if packed else spans)


@pytest.mark.parametrize("kind", ["aiohttp", "lean"])
@FUZZ
@given(data=st.data(), points=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_of_a_valid_answer_reads_the_same(
    kind: str, data: st.DataObject, points: list[int]
) -> None:
    answer = data.draw(valid_answers(gzip_ok=True))
    assert asyncio.run(exchange(kind, cut(answer.whole, points))) == answer.version


MUTATIONS = st.sampled_from(["truncate", "flip", "insert", "drop-line"])


@pytest.mark.parametrize("kind", ["aiohttp", "lean"])
@FUZZ
@given(
    data=st.data(),
    how=MUTATIONS,
    at=st.integers(0, 10_000),
    byte=st.integers(0, 255),
    points=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_broken_answers_give_typed_errors(
    kind: str, data: st.DataObject, how: str, at: int, byte: int, points: list[int]
) -> None:
    """A mangled answer either still reads as a valid one or raises a TFServingError.

    Bytes are changed in the framing only (status line, headers, chunk lines); a
    truncation may fall anywhere. Mangled JSON inside a well-framed body is the
    codec's business, not the transport's.
    """
    answer = data.draw(valid_answers(gzip_ok=True))
    whole = answer.whole
    framing = [i for i in range(len(whole)) if not answer.in_json(i)]
    at = at % len(whole) if how == "truncate" else framing[at % len(framing)]
    if how == "truncate":
        whole = whole[:at]
    elif how == "flip":
        whole = whole[:at] + bytes([whole[at] ^ (byte or 1)]) + whole[at + 1 :]
    elif how == "insert":
        whole = whole[:at] + bytes([byte]) + whole[at:]
    else:
        start = whole.rfind(b"\r\n", 0, at)
        end = whole.find(b"\r\n", at)
        whole = whole[: max(start, 0)] + whole[end if end >= 0 else len(whole) :]
    try:
        got = asyncio.run(exchange(kind, cut(whole, points)))
    except TFServingError:
        return
    assert isinstance(got, int)


@pytest.mark.parametrize("kind", ["aiohttp", "lean"])
@FUZZ
@given(garbage=st.binary(min_size=1, max_size=300), points=st.lists(st.integers(0, 300)))
def test_garbage_is_a_typed_error(kind: str, garbage: bytes, points: list[int]) -> None:
    with pytest.raises(TFServingError):
        asyncio.run(exchange(kind, cut(garbage, points)))


@FUZZ
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
    points=st.lists(st.integers(0, 40_000), max_size=8),
)
def test_header_size_limit(sizes: list[int], points: list[int]) -> None:
    """Headers within half the limit are read; beyond the limit they are refused."""
    limit = 8192
    headers = tuple((f"X-H{i}", "v" * n) for i, n in enumerate(sizes))
    total = sum(len(k) + len(v) + 4 for k, v in headers)
    whole = response(status_body(7), headers=headers)
    if total <= limit // 2:
        assert asyncio.run(exchange("lean", cut(whole, points), max_header_size=limit)) == 7
    elif total > limit:
        with pytest.raises(ConnectionFailedError, match="headers exceed"):
            asyncio.run(exchange("lean", cut(whole, points), max_header_size=limit))


async def predict_exchange(kind: str, pieces: list[bytes]) -> Any:
    """Serve ``pieces`` as the answer to one predict call; the output the client read."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        return False

    async with scripted_server(answer) as (url, _):
        transport = TRANSPORTS[kind](url, pool_size=1)
        request = PredictRequest(MODEL, {"x": np.ones(2, np.float32)})
        try:
            async with within(STEP):
                result = await transport.predict(request, OPTIONS)
        finally:
            await transport.aclose()
    return next(iter(result.values()))


@pytest.mark.parametrize("kind", ["aiohttp", "lean"])
@settings(FUZZ, max_examples=15)
@given(
    count=st.integers(4_000, 120_000),
    value=st.integers(0, 9),
    points=st.lists(st.integers(0, 2_000_000), max_size=6),
    truncate=st.booleans(),
)
def test_any_split_of_a_large_answer_reads_the_same(
    kind: str, count: int, value: int, points: list[int], truncate: bool
) -> None:
    """Bodies large enough to be read straight into their own buffer, in any pieces;
    cut short anywhere, they are a typed error."""
    whole = response(b'{"outputs": [' + b",".join([b"%d.5" % value] * count) + b"]}")
    if truncate:
        whole = whole[: max(points, default=len(whole) // 2) % len(whole)]
        with pytest.raises(TFServingError):
            asyncio.run(predict_exchange(kind, cut(whole, points)))
        return
    got = asyncio.run(predict_exchange(kind, cut(whole, points)))
    np.testing.assert_array_equal(got, np.full(count, value + 0.5, np.float32))
