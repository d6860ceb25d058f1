"""One connection of the lean HTTP transport: an HTTP/1.1 exchange at a time on
``asyncio.BufferedProtocol``, parsed by ``httptools``.

:class:`_Connection` sends a request and receives its answer into buffers it owns
(``recv_into``): the status line, headers and small or chunked bodies into one read
buffer, a large ``Content-Length`` body straight into a buffer of its exact size,
reused for a later answer once nobody holds it. The transport
(:mod:`tfs_async.transport.http_lean`) pools the connections and turns what they
raise into the SDK's errors.
"""

from __future__ import annotations

import asyncio
import sys
import zlib
from typing import TypeAlias, cast

try:
    import httptools
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the lean HTTP transport (the default for http:// targets) needs httptools, a "
        "dependency of tfs-async: pip install httptools, or use "
        "Client(..., http_transport='aiohttp')"
    ) from error


__all__: list[str] = []  # private to the lean transport

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
