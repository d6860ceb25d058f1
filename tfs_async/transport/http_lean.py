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
from collections.abc import Mapping

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
from tfs_async.transport.http_lean_connection import (
    _Connection,
    _decompress,
    _Disconnected,
    _ProtocolError,
    _Timeout,
    _TooLarge,
)
from tfs_async.transport.tls import TLSConfig
from tfs_async.types import ModelSpec

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DEFAULT_MAX_HEADER_SIZE", "LeanHttpTransport"]

#: Bytes of an answer's status line and headers before it is refused.
DEFAULT_MAX_HEADER_SIZE = 64 * 1024
#: Bytes of an answer's body (after decompression) before it is refused.
DEFAULT_MAX_BODY_SIZE = 1024 * 1024 * 1024

_VERSION = "0.1.0"


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
