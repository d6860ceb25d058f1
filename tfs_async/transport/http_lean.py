"""The lean HTTP/1.1 transport (the default for ``http(s)://`` targets): keep-alive
connections on ``asyncio.BufferedProtocol`` with ``httptools``.

The same REST calls, URLs, request bodies, answers and errors as
:class:`~tfs_async.transport.http.HttpTransport` (it inherits them), with a
smaller I/O path for TF Serving's JSON exchanges: one request per connection at a
time (no pipelining), the answer received into buffers the connection owns
(``recv_into``) and parsed by ``httptools`` (llhttp, the parser uvicorn uses)
straight into a future. A ``Content-Length`` body of 16 KiB or more is read
straight into a buffer of exactly its size, handed to the decoder without a join or
a copy; the connection reuses that buffer for a later answer once nobody holds it
(no allocation, no page faults per large answer).

``Client("http://host:8501")`` uses it; ``http_transport="aiohttp"`` picks
:class:`~tfs_async.transport.http.HttpTransport` instead.

What it handles: ``https://`` (ssl contexts from :class:`~tfs_async.transport.tls.TLSConfig`),
gzip request bodies (``compress``), gzip and deflate answers, chunked answers,
``Connection: close``, answers read until the server closes, 1xx answers (skipped),
a bound on the answer's header and body sizes, and stale keep-alive connections: a
request sent on a reused connection that the server closed before answering any
byte is sent once more on a fresh connection.

Connections: at most ``pool_size`` at once; callers beyond wait in arrival order
(FIFO). A call that times out or is cancelled closes its connection (the state of
its answer is unknown).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import ssl
import sys
import zlib
from collections.abc import Mapping
from typing import TypeAlias, cast

try:
    import httptools
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the lean HTTP transport (the default for http:// targets) needs httptools, a "
        "dependency of tfs-async: pip install httptools, or use "
        "Client(..., http_transport='aiohttp')"
    ) from error

from yarl import URL

from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    NotSentError,
    TFServingError,
    TLSError,
    error_from_http,
)
from tfs_async.transport.base import CallOptions, RestFormat
from tfs_async.transport.http import (
    HttpTransport,
    _quiet_guard,
    bounded,
    response_too_large,
    retry_after_seconds,
)
from tfs_async.transport.tls import TLSConfig
from tfs_async.types import ModelSpec

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DEFAULT_MAX_HEADER_SIZE", "LeanHttpTransport"]

#: Bytes of an answer's status line and headers before it is refused.
DEFAULT_MAX_HEADER_SIZE = 64 * 1024
#: Bytes of an answer's body (after decompression) before it is refused.
DEFAULT_MAX_BODY_SIZE = 1024 * 1024 * 1024

_VERSION = "0.1.0"
# Bodies above this are written apart from the head instead of copied into one buffer.
_JOIN_LIMIT = 64 * 1024
# Each connection's read buffer: status line, headers, small and chunked bodies.
_READ_SIZE = 64 * 1024
# A Content-Length body with at least this many bytes still to come is read straight
# into a buffer of its own (see _Connection._go_direct).
_DIRECT_MIN = 16 * 1024
# A connection keeps its last body buffer up to this size for the next answer (at most
# pool_size x 4 MiB kept; above it the JSON decode dwarfs what reuse saves).
_SPARE_MAX = 4 * 1024 * 1024
# Whether this interpreter counts references (CPython): buffers are reused only then.
_COUNTS_REFERENCES = hasattr(sys, "getrefcount")

# (status, body, Content-Encoding, Retry-After) of one answer.
_Answer: TypeAlias = "tuple[int, bytes | bytearray | memoryview, bytes | None, bytes | None]"


class _ProtocolError(Exception):
    """The server's bytes are not an HTTP/1.1 answer we accept (framing, sizes, upgrade)."""


class _TooLarge(_ProtocolError):
    """The answer's body is over the size limit."""

    def __init__(self, size: int, exact: bool, limit: int) -> None:
        super().__init__(f"answer body exceeds {limit} bytes")
        self.size = size
        self.exact = exact
        self.limit = limit


class _Disconnected(Exception):
    """The connection ended before the answer was complete."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        #: whether any byte of the answer had arrived (if not, the request may be resent)
        self.answered = answered


class _Timeout(Exception):
    """The call's deadline passed while waiting for the answer."""


class _Connection(asyncio.BufferedProtocol):
    """One HTTP/1.1 connection carrying one exchange at a time.

    Bytes are received into buffers this connection owns (``recv_into``, no bytes
    object per read): a per-connection read buffer for the status line, headers,
    small and chunked bodies (parsed by ``httptools``), and, for a ``Content-Length``
    body with at least ``_DIRECT_MIN`` bytes still to come, one buffer of exactly
    that length that the socket fills directly (handed to the caller as it is: no
    join, no copy).
    """

    def __init__(self, max_header_size: int, max_body_size: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self.waiter: asyncio.Future[_Answer] | None = None
        self.closed = False
        self.keep_alive = True
        self.idle_since = 0.0
        self.lost: asyncio.Future[None] | None = None
        self._read = memoryview(bytearray(_READ_SIZE))
        # The answer being read.
        self._answered = False
        self._head_size = 0  # header bytes parsed
        self._raw_head = 0  # bytes received while the headers were incomplete
        self._headers_done = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._length = -1  # Content-Length (-1: none)
        self._encoding: bytes | None = None
        self._retry_after: bytes | None = None
        self._framed = False  # Content-Length or chunked: not read until the server closes
        self._chunked = False
        self._status = 0
        self._keep = True  # what the answer's headers say about keep-alive
        self._error: Exception | None = None
        # Direct mode: the body's buffer (a view of ``_spare`` or a new bytearray),
        # filled by the socket.
        self._body: memoryview | bytearray | None = None
        self._body_view: memoryview | None = None
        # The last body buffer, reused once nobody holds a view of it any more
        # (``_spare_refs``: its reference count when only this connection holds it).
        self._spare: bytearray | None = None
        self._spare_refs = 0

    # -- asyncio.BufferedProtocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A socket transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = cast(asyncio.Transport, transport)
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.waiter = None
        if self._headers_done and not self._framed and self._error is None:
            # No Content-Length, not chunked: the body ran until the server closed.
            waiter.set_result(self._result())
            return
        reason = f": {exc}" if exc is not None else ""
        waiter.set_exception(
            _Disconnected(
                "the server closed the connection before the answer was complete" + reason,
                answered=self._answered,
            )
        )

    def eof_received(self) -> bool:
        return False  # close our side too

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self._body_view
        if view is not None:
            return view[self._size :]
        return self._read

    def buffer_updated(self, nbytes: int) -> None:
        if self._body_view is not None:
            self._size += nbytes
            if self._size == self._length:
                self._direct_complete()
            return
        if self.waiter is None:
            # Bytes nobody asked for (pipelining is off): the connection cannot be trusted.
            self.abort()
            return
        self._answered = True
        if not self._headers_done:
            self._raw_head += nbytes
        try:
            self.parser.feed_data(self._read[:nbytes])
        except httptools.HttpParserUpgrade:
            self._fail(_ProtocolError("the server switched protocols; HTTP/1.1 was expected"))
            return
        except httptools.HttpParserError as error:
            self._fail(self._error or _ProtocolError(f"malformed HTTP answer: {error}"))
            return
        except _ProtocolError as error:
            self._fail(error)
            return
        if self.waiter is None:
            return  # answered (or failed)
        if not self._headers_done:
            if self._raw_head > self.max_header_size:
                self._fail(_ProtocolError(f"answer headers exceed {self.max_header_size} bytes"))
        elif self._length - self._size >= _DIRECT_MIN and not self._chunked:
            self._go_direct()

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None:
            # A second answer in the same bytes (pipelining is off): stop, drop the connection.
            self.closed = True
            self._error = _ProtocolError("unsolicited bytes after the answer")
            raise self._error

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.max_header_size:
            self._error = _ProtocolError(f"answer headers exceed {self.max_header_size} bytes")
            raise self._error
        key = name.lower()
        if key == b"content-length":
            self._framed = True
            try:
                self._length = int(value)
            except ValueError:
                self._length = -1  # llhttp refuses it
            if self._length > self.max_body_size:
                self._error = _TooLarge(self._length, True, self.max_body_size)
                raise self._error
        elif key == b"content-encoding":
            self._encoding = value.strip().lower()
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            self._framed = self._chunked = True
        elif key == b"retry-after":
            self._retry_after = value

    def on_headers_complete(self) -> None:
        self._headers_done = True
        parser = self.parser
        self._status = parser.get_status_code()
        self._keep = parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body_size:
            self._error = _TooLarge(self._size, False, self.max_body_size)
            raise self._error
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:
            # 100 Continue, 103 Early Hints, ...: the real answer follows.
            self._reset()
            return
        self._answer_complete()

    # -- use -------------------------------------------------------------------------

    def _go_direct(self) -> None:
        """Read the rest of a Content-Length body straight into its own buffer."""
        if self._status < 200 or self._status in (204, 304):
            return  # no body follows, whatever the headers say
        length = self._length
        body: memoryview | bytearray
        spare = self._spare
        if (
            spare is not None
            and len(spare) >= length
            and sys.getrefcount(spare) == self._spare_refs
        ):
            # The caller of the previous answer let go of it: no allocation, no page
            # faults (a fresh large buffer costs one per 4 KiB page it fills).
            body = memoryview(spare)[:length]
        else:
            spare = bytearray(length)
            if _COUNTS_REFERENCES and length <= _SPARE_MAX:
                self._spare = spare
                # Held by self._spare and ``spare``, as at the check above.
                self._spare_refs = sys.getrefcount(spare)
            body = spare
        view = memoryview(body)
        end = 0
        for chunk in self._chunks:
            view[end : end + len(chunk)] = chunk
            end += len(chunk)
        self._chunks = []
        self._body = body
        self._body_view = view

    def _direct_complete(self) -> None:
        # httptools saw only the start of this body: a new parser for the next answer.
        self.parser = httptools.HttpResponseParser(self)
        self._answer_complete()

    def _answer_complete(self) -> None:
        # An answer before the whole request was sent: the server would read the rest
        # of the body as a new request, so the connection cannot be reused.
        transport = self.transport
        self.keep_alive = (
            self._keep and transport is not None and not transport.get_write_buffer_size()
        )
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._result())
        if not self.keep_alive:
            self.close()

    def _result(self) -> _Answer:
        body: bytes | bytearray | memoryview
        if self._body is not None:
            body = self._body
            view, self._body, self._body_view = self._body_view, None, None
            if view is not None:
                view.release()
        else:
            chunks = self._chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._status, body, self._encoding, self._retry_after

    def _reset(self) -> None:
        self._head_size = 0
        self._raw_head = 0
        self._headers_done = False
        self._chunks = []
        self._size = 0
        self._length = -1
        self._encoding = None
        self._retry_after = None
        self._framed = False
        self._chunked = False
        self._status = 0
        self._keep = True
        self._error = None
        self._body = self._body_view = None

    def send(
        self, head: bytes, body: bytes | None, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[_Answer]:
        """Write one request; the future resolves with the answer (see ``_Answer``)."""
        assert self.transport is not None
        self._reset()
        self._answered = False
        waiter: asyncio.Future[_Answer] = loop.create_future()
        self.waiter = waiter
        if body is None:
            self.transport.write(head)
        elif len(body) <= _JOIN_LIMIT:
            self.transport.write(head + body)
        else:
            # In one write: the transport sends what the socket takes and keeps (copies)
            # only the rest; slices would cost a send and a wake-up each.
            self.transport.write(head)
            self.transport.write(body)
        return waiter

    def expire(self) -> None:
        """The deadline passed: fail the waiting call and drop the connection."""
        self._fail(_Timeout())

    def _fail(self, error: Exception) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close_socket(self) -> None:
        """Close the socket without the event loop (its loop is gone)."""
        self.closed = True
        transport, self.transport = self.transport, None
        sock = getattr(transport, "_sock", None)  # asyncio's transports keep it there
        if sock is not None:
            sock.close()


def _decompress(
    body: bytes | bytearray | memoryview, encoding: bytes, limit: int
) -> bytes | bytearray | memoryview:
    if encoding in (b"gzip", b"x-gzip"):
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    elif encoding == b"deflate":
        # RFC 9110 deflate is zlib-wrapped; some servers send raw deflate.
        wrapped = len(body) >= 2 and (body[0] & 0x0F) == 8 and (body[0] << 8 | body[1]) % 31 == 0
        decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
    elif encoding == b"identity":
        return body
    else:
        raise _ProtocolError(f"unsupported Content-Encoding {encoding.decode('latin-1')!r}")
    try:
        data = decoder.decompress(body, limit + 1)
    except zlib.error as error:
        raise _ProtocolError(f"bad {encoding.decode()} answer body: {error}") from error
    if len(data) > limit:
        raise _TooLarge(len(data), False, limit)
    if not decoder.eof:
        raise _ProtocolError(f"truncated {encoding.decode()} answer body")
    return data


def _header_block(headers: Mapping[str, str] | tuple[tuple[str, str], ...]) -> bytes:
    items = headers.items() if isinstance(headers, Mapping) else headers
    lines = []
    for name, value in items:
        if not name or any(c in name for c in "\r\n: \t") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid HTTP header {name!r}: {value!r}")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class _HeaderBlocks(dict[tuple[tuple[str, str], ...], bytes]):
    """Per-call metadata -> its header lines, cached; shown without them (tokens)."""

    def __repr__(self) -> str:
        return f"<{len(self)} cached header blocks>"


async def _close_when_loop_ends(transport: LeanHttpTransport) -> None:
    """Wait until cancelled, then close the connections (see http.py's guard)."""
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        # Not a ``finally``: a guard garbage-collected with its loop must not touch it.
        transport._close_connections()
        raise


class LeanHttpTransport(HttpTransport):
    """TF Serving over REST on a small keep-alive HTTP/1.1 client (``httptools``).

    Args:
        base_url: ``http://host:8501`` or ``https://host:8501`` (no path, no query).
        pool_size: most connections open at once; callers beyond wait in arrival order.
        tls: certificates for ``https://`` (custom CA, client certificate, server name).
        ssl_context: a ready SSLContext, instead of ``tls``.
        headers: sent with every request (e.g. authorization).
        keepalive_timeout: seconds an idle connection is kept for reuse.
        max_header_size: bytes of an answer's status line and headers before it is refused.
        max_body_size: bytes of an answer's body (decompressed) before it is refused.
        max_message_size: largest request body and response body in bytes, as for
            :class:`~tfs_async.transport.http.HttpTransport` (over it:
            :class:`~tfs_async.errors.MessageTooLargeError`).
        rest_format: Predict bodies as ``"columns"`` or ``"rows"``, as for
            :class:`~tfs_async.transport.http.HttpTransport`.

    Answers it cannot read (bad framing, over ``max_body_size``, an unknown
    Content-Encoding, a connection closed mid-answer) raise
    :class:`~tfs_async.errors.ConnectionFailedError`, as the aiohttp transport does.
    Everything else is the aiohttp transport's: the FIFO wait for a connection (told to
    the observer as :class:`~tfs_async.observe.PoolWait`), ``Retry-After`` on 429 and
    503 (``error.retry_after``), :meth:`wait_for_server`, the errors and their texts.
    """

    def __init__(
        self,
        base_url: str,
        *,
        pool_size: int = 16,
        tls: TLSConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        keepalive_timeout: float = 30.0,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_message_size: int | None = None,
        rest_format: RestFormat = "columns",
    ) -> None:
        super().__init__(
            base_url,
            pool_size=pool_size,
            tls=tls,
            ssl_context=ssl_context,
            headers=headers,
            keepalive_timeout=keepalive_timeout,
            max_message_size=max_message_size,
            rest_format=rest_format,
        )
        if max_header_size < 1 or max_body_size < 0:
            raise ValueError("max_header_size must be >= 1 and max_body_size >= 0")
        url = URL(self.base_url)
        https = url.scheme == "https"
        self._host = url.raw_host or ""
        self._port = url.port or (443 if https else 80)
        self._lean_ssl: ssl.SSLContext | None = None
        if https:
            self._lean_ssl = (
                self._ssl if isinstance(self._ssl, ssl.SSLContext) else ssl.create_default_context()
            )
        default_port = 443 if https else 80
        netloc = url.raw_host or ""
        if ":" in netloc:  # an IPv6 literal
            netloc = f"[{netloc}]"
        if self._port != default_port:
            netloc += f":{self._port}"
        base_headers = {
            "Host": netloc,
            "User-Agent": f"tfs-async/{_VERSION}",
            "Accept-Encoding": "gzip, deflate",
        }
        base_headers.update(self._headers)
        self._static_headers = _header_block(base_headers)
        self._max_header_size = max_header_size
        # max_message_size, when smaller, is the limit (and its error MessageTooLargeError).
        self._max_body_size = (
            max_body_size if max_message_size is None else min(max_body_size, max_message_size)
        )
        self._idle: list[_Connection] = []
        self._connections: set[_Connection] = set()
        self._metadata_blocks = _HeaderBlocks()

    # -- connections -------------------------------------------------------------

    def _bind(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]:
        if self._closed:
            raise RuntimeError("the HTTP transport is closed")
        loop = asyncio.get_running_loop()
        slots = self._slots
        if slots is not None and self._loop is loop:
            return loop, slots
        forked = self._pid != os.getpid()
        if self._loop is not None and not self._loop.is_closed() and not forked:
            raise RuntimeError(
                "this HTTP transport is in use by another running event loop; "
                "create one client per event loop"
            )
        # First use, a new loop (the old one is gone) or a forked child: start afresh
        # (a child must not touch its parent's sockets).
        self._pid = os.getpid()
        self._idle = []
        self._connections = set()
        slots = self._slots = asyncio.Semaphore(self.pool_size)
        self._loop = loop
        self._guard = _quiet_guard(loop.create_task(_close_when_loop_ends(self)))
        return loop, slots

    def _close_connections(self) -> list[asyncio.Future[None]]:
        lost = []
        for conn in list(self._connections):
            conn.close()
            if conn.lost is not None:
                lost.append(conn.lost)
        self._connections.clear()
        self._idle.clear()
        return lost

    def _holds_sockets(self) -> bool:
        connections: set[_Connection] | None = getattr(self, "_connections", None)
        return bool(connections)

    def _close_sockets_now(self) -> None:
        for conn in list(self._connections):
            conn.close_socket()
        self._connections.clear()

    async def aclose(self) -> None:
        """Close every connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed() or loop is not asyncio.get_running_loop():
            return
        lost = self._close_connections()
        if lost:
            await asyncio.wait(lost, timeout=5.0)
        tasks = [t for t in (self._guard, self._probe) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _checkout(
        self, loop: asyncio.AbstractEventLoop, deadline: float | None, model: ModelSpec | None
    ) -> tuple[_Connection, bool]:
        """An idle connection (``True``: reused) or a new one."""
        idle = self._idle
        now = loop.time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive_timeout:
                return conn, True
            self._drop(conn)
        timeout = None if deadline is None else deadline - now
        if timeout is not None and timeout <= 0:
            raise DeadlineExceededError(f"no time left to connect to {self.base_url}", model=model)

        def factory() -> _Connection:
            return _Connection(self._max_header_size, self._max_body_size)

        server_hostname = None
        if self._lean_ssl is not None:
            server_hostname = self._server_name or self._host
        try:
            _, conn = await bounded(
                loop.create_connection(
                    factory,
                    self._host,
                    self._port,
                    ssl=self._lean_ssl,
                    server_hostname=server_hostname,
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            raise DeadlineExceededError(
                f"could not connect to {self.base_url} within {timeout:.3g} s", model=model
            ) from None
        except ssl.SSLError as error:
            # Certificate and handshake failures are deterministic: not retried.
            raise TLSError(
                f"TLS handshake with {self.base_url} failed: {type(error).__name__}: {error}",
                model=model,
            ) from error
        except OSError as error:
            # No connection was made: nothing was written, re-sending is safe.
            raise NotSentError(
                f"cannot connect to {self.base_url}: {type(error).__name__}: {error}", model=model
            ) from error
        if self._closed:
            conn.abort()
            raise RuntimeError("the HTTP transport is closed")
        self._connections.add(conn)
        return conn, False

    def _drop(self, conn: _Connection) -> None:
        conn.abort()
        self._connections.discard(conn)

    def _release(self, conn: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        if conn.closed or not conn.keep_alive or self._closed:
            self._drop(conn)
        else:
            conn.idle_since = loop.time()
            self._idle.append(conn)

    def _head(
        self, method: str, path: str, body: bytes | None, options: CallOptions, gzipped: bool
    ) -> bytes:
        parts = [f"{method} {path} HTTP/1.1\r\n".encode("latin-1"), self._static_headers]
        if options.metadata:
            block = self._metadata_blocks.get(options.metadata)
            if block is None:
                block = _header_block(options.metadata)
                if len(self._metadata_blocks) >= 256:
                    self._metadata_blocks.clear()
                self._metadata_blocks[options.metadata] = block
            parts.append(block)
        if body is not None:
            parts.append(b"Content-Type: application/json\r\n")
            if gzipped:
                parts.append(b"Content-Encoding: gzip\r\n")
            parts.append(b"Content-Length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        return b"".join(parts)

    async def _exchange(
        self,
        method: str,
        url: URL,
        body: bytes | None,
        options: CallOptions,
        model: ModelSpec | None,
    ) -> bytes | bytearray | memoryview:
        loop, slots = self._bind()
        gzipped = body is not None and options.compress
        if gzipped:
            assert body is not None
            body = gzip.compress(body, compresslevel=5)
        self._check_request_size(method, url, body, model)
        head = self._head(method, url.raw_path, body, options, gzipped)
        # Our turn for a connection (FIFO; a wait counts against the timeout and is
        # told to the observer).
        timeout = await self._acquire_slot(slots, options.timeout, model)
        deadline = None if timeout is None else loop.time() + timeout
        try:
            for attempt in range(2):
                conn, reused = await self._checkout(loop, deadline, model)
                waiter = conn.send(head, body, loop)
                timer = None if deadline is None else loop.call_at(deadline, conn.expire)
                try:
                    status, data, encoding, hint = await waiter
                except _Disconnected as error:
                    self._drop(conn)
                    if reused and not error.answered and attempt == 0 and not self._closed:
                        continue  # a stale keep-alive connection: once more on a fresh one
                    raise ConnectionFailedError(f"{method} {url}: {error}", model=model) from None
                except _Timeout:
                    self._drop(conn)
                    within = (
                        "in time" if options.timeout is None else f"within {options.timeout:.3g} s"
                    )
                    raise DeadlineExceededError(
                        f"{method} {url}: no answer {within}", model=model
                    ) from None
                except _ProtocolError as error:
                    self._drop(conn)
                    raise self._unreadable(method, url, error, model) from None
                except BaseException:
                    # Cancelled: the answer's state is unknown, the connection unusable.
                    self._drop(conn)
                    raise
                finally:
                    if timer is not None:
                        timer.cancel()
                self._release(conn, loop)
                break
        finally:
            slots.release()
        if encoding is not None:
            try:
                data = _decompress(data, encoding, self._max_body_size)
            except _ProtocolError as error:
                raise self._unreadable(method, url, error, model) from None
        if status >= 300:
            failure = error_from_http(status, bytes(data), model=model)
            if hint is not None and status in (429, 503):
                failure.retry_after = retry_after_seconds(hint.decode("latin-1"))
            raise failure
        return data

    def _unreadable(
        self, method: str, url: URL, error: _ProtocolError, model: ModelSpec | None
    ) -> TFServingError:
        """The error for an answer that cannot be read: over max_message_size or not HTTP."""
        limit = self.max_message_size
        if isinstance(error, _TooLarge) and limit is not None and error.limit == limit:
            return response_too_large(method, url, error.size, error.exact, limit, model)
        return ConnectionFailedError(f"{method} {url}: {error}", model=model)

    def __repr__(self) -> str:
        return f"LeanHttpTransport({self.base_url!r}, pool_size={self.pool_size})"
