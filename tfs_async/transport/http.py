"""The HTTP transport: TF Serving's REST API (``/v1/models/...``) over one aiohttp session.

Connections: a bounded pool (``pool_size`` keep-alive connections) behind a
first-come-first-served queue: callers wait on an asyncio semaphore (FIFO) for a
free connection, so the connector never holds more waiters than connections and
nobody is starved. Model names, versions and labels are percent-encoded into
TF Serving's URLs and never sent as a query string (TF Serving's router sees the
query as part of the path).

Failures are told apart by whether the request may have reached the server: a
connection that could not be made (refused, unreachable, name not resolved)
raises :class:`~tfs_async.errors.NotSentError` (re-sent for free while the
caller waits for a server, see :meth:`HttpTransport.wait_for_server`); one lost
after the request was written (server disconnected, reset) raises
:class:`~tfs_async.errors.ConnectionFailedError` (the retry policy decides). A
``Retry-After`` header on 429/503 is kept on the error as ``retry_after``.
With ``max_message_size``, a larger request body fails before sending and a
larger response while reading, as :class:`~tfs_async.errors.MessageTooLargeError`.

>>> model_path("http://h:8501", ModelSpec("a/b:c", label="can ary"), ":predict")
'http://h:8501/v1/models/a%2Fb%3Ac/labels/can%20ary:predict'
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gzip
import os
import random
import ssl
import sys
import time
import warnings
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

import tfs_async.codec.json as json_codec
from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    MessageTooLargeError,
    NotSentError,
    ResponseDecodeError,
    StatusCode,
    TFServingError,
    TLSError,
    UnimplementedError,
    error_from_http,
    http_status_for_code,
)
from tfs_async.observe import PoolWait
from tfs_async.transport.address import split_target
from tfs_async.transport.base import REST_FORMATS, CallOptions, RestFormat, Transport
from tfs_async.transport.http_common import model_path, ssl_context_for
from tfs_async.transport.tls import TLSConfig
from tfs_async.types import (
    DEFAULT_SIGNATURE,
    ClassifyRequest,
    ClassifyResult,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    MultiInferenceRequest,
    MultiInferenceResult,
    PredictRequest,
    PredictResult,
    RegressRequest,
    RegressResult,
)

__all__ = [
    "HttpTransport",
    "model_path",
    "response_too_large",
    "retry_after_seconds",
    "ssl_context_for",
]

T = TypeVar("T")
_JSON_HEADERS = {"Content-Type": "application/json"}
# TF Serving's REST words for a Predict signature the model lacks (around the name).
_SIGNATURE_MISS = ('Serving signature name: "', '" not found in signature def')
# Methods aiohttp itself sends again once when a kept-alive connection was closed
# (none before aiohttp 3.10, which lacks the constant: the transport then does it).
_RESENT_BY_AIOHTTP: frozenset[str] = frozenset(
    getattr(aiohttp.client, "IDEMPOTENT_METHODS", frozenset())
)
# wait_for_server: one probe loop per transport, backing off from 50 ms to 500 ms.
_PROBE_INITIAL = 0.05
_PROBE_MAX = 0.5


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """An HTTP ``Retry-After`` value (seconds or an HTTP date) in seconds; ``None`` if unreadable.

    >>> retry_after_seconds("2"), retry_after_seconds("0.5"), retry_after_seconds("soon")
    (2.0, 0.5, None)
    >>> retry_after_seconds("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0)
    5.0
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(seconds, 0.0)
    return seconds if seconds >= 0 and seconds == seconds else None


async def _close_when_loop_ends(session: aiohttp.ClientSession) -> None:
    """Wait until cancelled, then close ``session``.

    ``asyncio.run`` cancels the tasks left when its coroutine ends: a client still
    open then (used across several ``asyncio.run`` calls) closes its connections
    inside the loop that owns them instead of leaking them.
    """
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        # Not a ``finally``: a guard garbage-collected with its loop must not await.
        await session.close()
        raise


def response_too_large(
    method: str, url: URL, size: int, exact: bool, limit: int, model: ModelSpec | None
) -> MessageTooLargeError:
    """The error for an answer over ``max_message_size`` (``exact``: its declared size)."""
    measured = f"{size} bytes" if exact else f"over {limit} bytes"
    return MessageTooLargeError(
        f"{method} {url}: the response is {measured}, over the limit of {limit} bytes "
        "(raise it with Client(max_message_size=...))",
        size=size if exact else None,
        limit=limit,
        model=model,
    )


async def _read_limited(
    response: aiohttp.ClientResponse, limit: int, method: str, url: URL, model: ModelSpec | None
) -> bytes:
    """The response body, or MessageTooLargeError once it passes ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise response_too_large(method, url, declared, True, limit, model)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise response_too_large(method, url, size, False, limit, model)
        chunks.append(chunk)
    return b"".join(chunks)


def _grpc_signature_miss(error: InvalidArgumentError) -> FailedPreconditionError | None:
    """REST's answer for a Predict signature the model lacks, with gRPC's class.

    TF Serving's REST handler looks the signature up itself and says INVALID_ARGUMENT
    (model_servers/http_rest_api_handler.cc); its gRPC Predict says FAILED_PRECONDITION
    (servables/tensorflow/predict_util.cc). One condition, one error class: the
    server's message and HTTP status are kept. ``None`` for any other error.

    >>> e = InvalidArgumentError('Serving signature name: "s" not found in signature def')
    >>> type(_grpc_signature_miss(e)).__name__
    'FailedPreconditionError'
    """
    text = error.message
    if not (text.startswith(_SIGNATURE_MISS[0]) and text.endswith(_SIGNATURE_MISS[1])):
        return None
    miss = FailedPreconditionError(text, http_status=error.http_status, model=error.model)
    miss.retry_after = error.retry_after
    return miss


if sys.version_info >= (3, 11):

    async def bounded(awaitable: Awaitable[T], timeout: float | None) -> T:
        """``await awaitable`` for at most ``timeout`` seconds (TimeoutError after).

        Not ``asyncio.wait_for``: before Python 3.12 it loses a cancellation that
        arrives as the awaitable completes, and the caller, cancelled, carries on.
        """
        async with asyncio.timeout(timeout):
            return await awaitable

else:  # pragma: no cover - Python 3.10 has no asyncio.timeout

    async def bounded(awaitable: Awaitable[T], timeout: float | None) -> T:
        """``await awaitable`` for at most ``timeout`` seconds (TimeoutError after)."""
        return await asyncio.wait_for(awaitable, timeout)


def _quiet_guard(task: asyncio.Task[None]) -> asyncio.Task[None]:
    """A close-on-loop-end guard that may be destroyed pending (its loop ended) without a log."""
    # asyncio's own flag for tasks whose pending destruction is expected.
    task._log_destroy_pending = False  # type: ignore[attr-defined]
    return task


class HttpTransport(Transport):
    """TF Serving over REST (aiohttp).

    Args:
        base_url: ``http://host:8501`` or ``https://host:8501`` (no path, no query).
        pool_size: most connections open at once; callers beyond wait in arrival order.
        tls: certificates for ``https://`` (custom CA, client certificate, server name).
        ssl_context: a ready SSLContext, instead of ``tls``.
        headers: sent with every request (e.g. authorization).
        keepalive_timeout: seconds an idle connection is kept open.
        max_message_size: largest request body and response body in bytes
            (``None``: no limit, as TF Serving's REST server sets none).
        rest_format: Predict bodies as ``"columns"`` (``inputs``, the default) or
            ``"rows"`` (``instances``); a call's ``CallOptions.rest_format`` wins.

    REST has no MultiInference nor HandleReloadConfigRequest: those raise
    UnimplementedError before anything is sent. REST cannot send an
    ``output_filter``: it is applied to the answer (the caller checks the names
    first, see :attr:`Transport.sends_output_filter`).
    """

    protocol = "http"
    #: JSON carries no dtypes: the server reads numbers into its signature's.
    server_types_inputs = True
    #: REST's Predict has no output filter: the transport picks the asked outputs
    #: from the answer; the caller has checked their names against the signature.
    sends_output_filter = False

    def http_status_for(self, code: StatusCode) -> int | None:
        """The status TF Serving's REST API answers with for ``code``."""
        return http_status_for_code(code)

    def __init__(
        self,
        base_url: str,
        *,
        pool_size: int = 16,
        tls: TLSConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        keepalive_timeout: float = 30.0,
        max_message_size: int | None = None,
        rest_format: RestFormat = "columns",
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected http://host:port or https://host:port, got {base_url!r}")
        if parts.query or parts.fragment or parts.path.strip("/"):
            raise ValueError(f"the base URL must have no path or query: {base_url!r}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        if max_message_size is not None and max_message_size < 1:
            raise ValueError(f"max_message_size must be >= 1 byte, got {max_message_size}")
        # Port range, non-numeric ports, IPv6 brackets: refused here, not when dialled.
        _, checked = split_target(base_url)
        checked_parts = urlsplit(checked)
        self._host = checked_parts.hostname or ""
        self._port = checked_parts.port or 0
        self.max_message_size = max_message_size
        self._probe: asyncio.Task[None] | None = None
        self.base_url = checked
        if rest_format not in REST_FORMATS:
            raise ValueError(f"rest_format must be one of {REST_FORMATS}, got {rest_format!r}")
        self.rest_format: RestFormat = rest_format
        self.pool_size = pool_size
        self._ssl: ssl.SSLContext | bool = True
        self._server_name: str | None = None
        if ssl_context is not None:
            self._ssl = ssl_context
        elif tls is not None:
            self._ssl = ssl_context_for(tls)
            self._server_name = tls.server_name
        self._headers = dict(headers or {})
        self._keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.Task[None] | None = None
        self._pid = os.getpid()
        self._urls: dict[tuple[ModelSpec, str], URL] = {}
        self._resolved_specs: dict[ModelSpec, ModelSpec] = {}
        self._closed = False

    # -- connections -------------------------------------------------------------

    def _bind_loop(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the HTTP transport is closed")
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is loop:
            return self._session
        forked = self._pid != os.getpid()
        if self._loop is not None and not self._loop.is_closed() and not forked:
            raise RuntimeError(
                "this HTTP transport is in use by another running event loop; "
                "create one client per event loop"
            )
        # First use, the loop that owned the session is gone (a second
        # asyncio.run), or this is a forked child whose sockets are the parent's:
        # start afresh.
        self._pid = os.getpid()
        connector = aiohttp.TCPConnector(
            limit=self.pool_size,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_timeout,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=None),
            # It asks for gzip or deflate (aiohttp's Accept-Encoding), so it must undo them.
            auto_decompress=True,
        )
        self._slots = asyncio.Semaphore(self.pool_size)
        self._loop = loop
        self._guard = _quiet_guard(loop.create_task(_close_when_loop_ends(self._session)))
        return self._session

    def __del__(self) -> None:
        # A client dropped without close(): release its sockets now, warn once.
        if not self._holds_sockets() or self._closed:
            return  # never used, not fully built, or closed
        loop = self._loop
        if loop is not None and loop.is_running() and self._guard is not None:
            # Dropped while its loop runs: the guard closes the connections now, cleanly.
            loop.call_soon_threadsafe(self._guard.cancel)
            return
        warnings.warn(
            f"a tfs_async Client (HTTP, {self.base_url}) was never closed: use "
            "`async with Client(...) as client:` or `await client.close()`",
            ResourceWarning,
            stacklevel=1,
        )
        # Its loop is gone: close the sockets themselves, no event loop needed.
        self._close_sockets_now()

    def _holds_sockets(self) -> bool:
        """Whether there are connections to release (``__del__``; may run half-built)."""
        session: aiohttp.ClientSession | None = getattr(self, "_session", None)
        return session is not None and not session.closed

    def _close_sockets_now(self) -> None:
        """Close the sockets synchronously, without an event loop."""
        session = self._session
        connector = session.connector if session is not None else None
        if connector is not None:
            with contextlib.suppress(Exception):
                # aiohttp then has nothing left to complain about.
                connector._close()

    async def aclose(self) -> None:
        """Close the session and its connections; idempotent."""
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        loop = self._loop
        if session is None or loop is None or loop.is_closed():
            return
        if loop is asyncio.get_running_loop():
            await session.close()
            tasks = [t for t in (self._guard, self._probe) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_for_server(self, timeout: float | None) -> bool:
        """Wait until the server accepts TCP connections again, at most ``timeout`` seconds.

        One probe loop per transport (a TCP connect every 50 ms growing to 500 ms,
        jittered) serves every waiting caller, so a restarted server is found
        within about half a second and a down one is not dialled by each caller.
        """
        if self._closed or self._loop is not asyncio.get_running_loop():
            return False
        probe = self._probe
        if probe is None or probe.done():
            probe = self._probe = asyncio.get_running_loop().create_task(self._probe_until_up())
        try:
            await asyncio.wait_for(asyncio.shield(probe), timeout)
        except asyncio.TimeoutError:
            return False
        except asyncio.CancelledError:
            if not probe.cancelled():
                raise  # this caller was cancelled
            return False  # the transport closed under the probe
        return True

    async def _probe_until_up(self) -> None:
        tries = 0
        while True:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(self._host, self._port), _PROBE_MAX * 2
                )
            except (OSError, asyncio.TimeoutError):
                tries += 1
                delay = min(_PROBE_INITIAL * 2 ** (tries - 1), _PROBE_MAX)
                await asyncio.sleep(delay * (0.5 + 0.5 * random.random()))
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    def _resolved(self, model: ModelSpec) -> ModelSpec:
        # REST answers carry no model spec: echo the request's, as gRPC would resolve it.
        resolved = self._resolved_specs.get(model)
        if resolved is None:
            if len(self._resolved_specs) >= 1024:
                self._resolved_specs.clear()
            resolved = ModelSpec(
                model.name, version=model.version, signature=model.signature or DEFAULT_SIGNATURE
            )
            self._resolved_specs[model] = resolved
        return resolved

    def _url(self, model: ModelSpec, suffix: str = "") -> URL:
        key = (model, suffix)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= 1024:
                self._urls.clear()
            url = URL(model_path(self.base_url, model, suffix), encoded=True)
            self._urls[key] = url
        return url

    async def _acquire_slot(
        self, slots: asyncio.Semaphore, timeout: float | None, model: ModelSpec | None
    ) -> float | None:
        """Wait our turn for a connection (FIFO); returns the time left of ``timeout``."""
        if not slots.locked():
            await slots.acquire()
            return timeout
        started = time.monotonic()
        try:
            await bounded(slots.acquire(), timeout)
        except asyncio.TimeoutError:
            if self.observer is not None:
                waited = time.monotonic() - started
                self.observer.pool_wait(PoolWait("http", self.base_url, waited, False))
            raise DeadlineExceededError(
                f"no free connection to {self.base_url} within {timeout} s", model=model
            ) from None
        if self.observer is not None:
            self.observer.pool_wait(
                PoolWait("http", self.base_url, time.monotonic() - started, True)
            )
        if timeout is None:
            return None
        timeout -= time.monotonic() - started
        if timeout <= 0:
            slots.release()
            raise DeadlineExceededError(
                f"no time left after waiting for a connection to {self.base_url}", model=model
            )
        return timeout

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        body: bytes | None,
        headers: Mapping[str, str],
        kwargs: dict[str, Any],
        deadline: float | None,
        model: ModelSpec | None,
    ) -> tuple[int, bytes, float | None]:
        """One exchange: the status, the body and a 429/503's ``Retry-After`` in seconds.

        A pooled keep-alive connection the server closed while it sat idle fails the
        next request before any answer: that request is sent once more on a fresh
        connection (it never reached a handler). aiohttp does this itself for GET; TF
        Serving's POSTs (predict, classify, regress) are idempotent too.
        """
        limit = self.max_message_size
        resend = method not in _RESENT_BY_AIOHTTP
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError
                kwargs["timeout"] = aiohttp.ClientTimeout(total=left)
            answered = False
            try:
                async with session.request(
                    method, url, data=body, headers=headers, **kwargs
                ) as response:
                    answered = True
                    if limit is None:
                        data = await response.read()
                    else:
                        data = await _read_limited(response, limit, method, url, model)
                    status = response.status
                    hint = response.headers.get("Retry-After") if status in (429, 503) else None
                    return status, data, retry_after_seconds(hint)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as error:
                # Not when connecting failed (nothing was sent), nor once any answer
                # arrived, nor a second time.
                if answered or not resend or isinstance(error, aiohttp.ClientConnectorError):
                    raise
                resend = False

    def _check_request_size(
        self, method: str, url: URL, body: bytes | None, model: ModelSpec | None
    ) -> None:
        """MessageTooLargeError before sending a body over ``max_message_size``."""
        limit = self.max_message_size
        if body is not None and limit is not None and len(body) > limit:
            raise MessageTooLargeError(
                f"{method} {url}: the request body is {len(body)} bytes, over the limit of "
                f"{limit} bytes; nothing was sent (raise it with Client(max_message_size=...))",
                size=len(body),
                limit=limit,
                model=model,
            )

    async def _exchange(
        self,
        method: str,
        url: URL,
        body: bytes | None,
        options: CallOptions,
        model: ModelSpec | None,
    ) -> bytes | bytearray | memoryview:
        """One request and its answer's body (bytes, or a buffer the transport read into)."""
        session = self._bind_loop()
        slots = self._slots
        assert slots is not None
        headers: Mapping[str, str]
        if body is not None and not options.metadata and not options.compress:
            headers = _JSON_HEADERS  # the common case: no dict per call (aiohttp copies it)
        else:
            headers = dict(_JSON_HEADERS) if body is not None else {}
            headers.update(options.metadata)
            if body is not None and options.compress:
                body = gzip.compress(body, compresslevel=5)
                headers["Content-Encoding"] = "gzip"
        self._check_request_size(method, url, body, model)
        kwargs: dict[str, Any] = {}
        if self._server_name is not None:
            kwargs["server_hostname"] = self._server_name
        timeout = await self._acquire_slot(slots, options.timeout, model)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            status, data, retry_after = await self._send(
                session, method, url, body, headers, kwargs, deadline, model
            )
        except asyncio.TimeoutError as error:
            within = "in time" if options.timeout is None else f"within {options.timeout:.3g} s"
            raise DeadlineExceededError(
                f"{method} {url}: no answer {within}", model=model
            ) from error
        except aiohttp.ClientConnectorError as error:
            if isinstance(error, aiohttp.ClientSSLError):
                # Certificate and handshake failures are deterministic: not an outage,
                # neither waited out nor retried.
                raise TLSError(
                    f"{method} {url}: TLS handshake failed: {type(error).__name__}: {error}",
                    model=model,
                ) from error
            # No connection was made: nothing was written, re-sending is safe.
            raise NotSentError(
                f"{method} {url}: {type(error).__name__}: {error}", model=model
            ) from error
        except aiohttp.ClientError as error:
            raise ConnectionFailedError(
                f"{method} {url}: {type(error).__name__}: {error}", model=model
            ) from error
        finally:
            slots.release()
        if status >= 300:
            failure = error_from_http(status, data, model=model)
            failure.retry_after = retry_after
            raise failure
        return data

    # -- the calls ---------------------------------------------------------------

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        """Run Predict (``inputs`` or ``instances`` JSON): one request, no metadata needed.

        Outputs are named and typed from the answer (see
        :func:`~tfs_async.codec.json.decode_predict_body`), or from
        ``request.signature_info`` when the caller has it (its single output's
        name, its declared dtypes).
        """
        model = request.model
        signature = request.signature_info
        rows = (options.rest_format or self.rest_format) == "rows"
        body = json_codec.encode_predict_body(
            request.inputs, signature_name=model.signature, row_format=rows
        )
        try:
            data = await self._exchange("POST", self._url(model, ":predict"), body, options, model)
        except InvalidArgumentError as error:
            miss = _grpc_signature_miss(error)
            if miss is None:
                raise
            raise miss from error
        try:
            outputs = json_codec.decode_predict_body(
                data, signature=signature, output_filter=tuple(request.output_filter)
            )
        except TFServingError as error:
            # An output_filter name the answer lacks: what the server would have said.
            error.model = error.model or model
            if error.http_status is None and error.code == StatusCode.INVALID_ARGUMENT:
                error.http_status = http_status_for_code(error.code)
            raise
        except (ValueError, TypeError, KeyError) as error:
            raise ResponseDecodeError(f"bad predict response: {error}", model=model) from error
        return PredictResult(outputs, model=self._resolved(model))

    async def classify(self, request: ClassifyRequest, options: CallOptions) -> ClassifyResult:
        """Run Classify (``examples`` JSON, ``results`` answer)."""
        model = request.model
        body = json_codec.encode_examples_body(
            request.examples, request.context, signature_name=model.signature
        )
        data = await self._exchange("POST", self._url(model, ":classify"), body, options, model)
        return ClassifyResult(model=model, classes=json_codec.decode_classify_body(data))

    async def regress(self, request: RegressRequest, options: CallOptions) -> RegressResult:
        """Run Regress (``examples`` JSON, ``results`` answer)."""
        model = request.model
        body = json_codec.encode_examples_body(
            request.examples, request.context, signature_name=model.signature
        )
        data = await self._exchange("POST", self._url(model, ":regress"), body, options, model)
        return RegressResult(model=model, values=json_codec.decode_regress_body(data))

    async def multi_inference(
        self, request: MultiInferenceRequest, options: CallOptions
    ) -> MultiInferenceResult:
        """Not offered by TF Serving's REST API: raises UnimplementedError, sends nothing."""
        model = request.tasks[0].model if request.tasks else None
        raise UnimplementedError(
            "MultiInference is not part of TF Serving's REST API; use a grpc:// target",
            model=model,
        )

    async def get_model_metadata(self, model: ModelSpec, options: CallOptions) -> ModelMetadata:
        """GET ``.../metadata``."""
        data = await self._exchange("GET", self._url(model, "/metadata"), None, options, model)
        return json_codec.decode_metadata_body(data)

    async def get_model_status(
        self, model: ModelSpec, options: CallOptions
    ) -> list[ModelVersionStatus]:
        """GET ``/v1/models/{m}[...]``; versions newest first."""
        data = await self._exchange("GET", self._url(model), None, options, model)
        statuses = json_codec.decode_status_body(data)
        return sorted(statuses, key=lambda s: s.version, reverse=True)

    async def reload_config(self, config: Any, options: CallOptions) -> None:
        """Not offered by TF Serving's REST API: raises UnimplementedError, sends nothing."""
        raise UnimplementedError(
            "HandleReloadConfigRequest is not part of TF Serving's REST API; use a grpc:// target"
        )
