"""The HTTP transport: TF Serving's REST API (``/v1/models/...``) over one aiohttp session.

Connections: a bounded pool (``pool_size`` keep-alive connections) behind a
first-come-first-served queue: callers wait on an asyncio semaphore (FIFO) for a
free connection, so the connector never holds more waiters than connections and
nobody is starved. Model names, versions and labels are percent-encoded into
TF Serving's URLs and never sent as a query string (TF Serving's router sees the
query as part of the path).

>>> model_path("http://h:8501", ModelSpec("a/b:c", label="can ary"), ":predict")
'http://h:8501/v1/models/a%2Fb%3Ac/labels/can%20ary:predict'
"""

from __future__ import annotations

import asyncio
import gzip
import os
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

import tfs_async.codec.json as json_codec
from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    ResponseDecodeError,
    StatusCode,
    TFServingError,
    UnimplementedError,
    error_from_http,
    http_status_for_code,
)
from tfs_async.transport.base import CallOptions, Transport
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

__all__ = ["HttpTransport", "model_path", "ssl_context_for"]

_JSON_HEADERS = {"Content-Type": "application/json"}


async def _close_when_loop_ends(session: aiohttp.ClientSession) -> None:
    """Wait until cancelled, then close ``session``.

    ``asyncio.run`` cancels the tasks left when its coroutine ends: a client still
    open then (used across several ``asyncio.run`` calls) closes its connections
    inside the loop that owns them instead of leaking them.
    """
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        await session.close()


class HttpTransport(Transport):
    """TF Serving over REST (aiohttp).

    Args:
        base_url: ``http://host:8501`` or ``https://host:8501`` (no path, no query).
        pool_size: most connections open at once; callers beyond wait in arrival order.
        tls: certificates for ``https://`` (custom CA, client certificate, server name).
        ssl_context: a ready SSLContext, instead of ``tls``.
        headers: sent with every request (e.g. authorization).
        keepalive_timeout: seconds an idle connection is kept open.

    REST has no MultiInference nor HandleReloadConfigRequest: those raise
    UnimplementedError before anything is sent. REST cannot send an
    ``output_filter``: it is applied to the answer (the caller checks the names
    first, see :attr:`Transport.sends_output_filter`).
    """

    protocol = "http"
    #: Predict over REST needs the signature to name a single unnamed output and
    #: to give outputs their declared dtypes; the client fetches it (cached).
    wants_signature_info = True
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
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected http://host:port or https://host:port, got {base_url!r}")
        if parts.query or parts.fragment or parts.path.strip("/"):
            raise ValueError(f"the base URL must have no path or query: {base_url!r}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
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
            auto_decompress=False,
        )
        self._slots = asyncio.Semaphore(self.pool_size)
        self._loop = loop
        self._guard = loop.create_task(_close_when_loop_ends(self._session))
        return self._session

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
            if self._guard is not None:
                self._guard.cancel()
                await asyncio.gather(self._guard, return_exceptions=True)

    def _url(self, model: ModelSpec, suffix: str = "") -> URL:
        key = (model, suffix)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= 1024:
                self._urls.clear()
            url = URL(model_path(self.base_url, model, suffix), encoded=True)
            self._urls[key] = url
        return url

    async def _exchange(
        self,
        method: str,
        url: URL,
        body: bytes | None,
        options: CallOptions,
        model: ModelSpec | None,
    ) -> bytes:
        session = self._bind_loop()
        slots = self._slots
        assert slots is not None
        headers: dict[str, str] = dict(_JSON_HEADERS) if body is not None else {}
        headers.update(options.metadata)
        if body is not None and options.compress:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        kwargs: dict[str, Any] = {}
        if self._server_name is not None:
            kwargs["server_hostname"] = self._server_name
        timeout = options.timeout
        if slots.locked():
            # Wait our turn for a connection (FIFO); the wait counts against the timeout.
            started = time.monotonic()
            try:
                await asyncio.wait_for(slots.acquire(), timeout)
            except asyncio.TimeoutError:
                raise DeadlineExceededError(
                    f"no free connection to {self.base_url} within {timeout} s", model=model
                ) from None
            if timeout is not None:
                timeout -= time.monotonic() - started
                if timeout <= 0:
                    slots.release()
                    raise DeadlineExceededError(
                        f"no time left after waiting for a connection to {self.base_url}",
                        model=model,
                    )
        else:
            await slots.acquire()
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with session.request(
                method, url, data=body, headers=headers, **kwargs
            ) as response:
                data = await response.read()
                status = response.status
        except asyncio.TimeoutError as error:
            limit = "in time" if options.timeout is None else f"within {options.timeout:.3g} s"
            raise DeadlineExceededError(
                f"{method} {url}: no answer {limit}", model=model
            ) from error
        except aiohttp.ClientError as error:
            raise ConnectionFailedError(
                f"{method} {url}: {type(error).__name__}: {error}", model=model
            ) from error
        finally:
            slots.release()
        if status >= 300:
            raise error_from_http(status, data, model=model)
        return data

    # -- the calls ---------------------------------------------------------------

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        """Run Predict (columnar ``inputs`` JSON); outputs named and typed from the signature."""
        model = request.model
        signature = request.signature_info
        body = json_codec.encode_predict_body(request.inputs, signature_name=model.signature)
        data = await self._exchange("POST", self._url(model, ":predict"), body, options, model)
        try:
            outputs = json_codec.decode_predict_body(
                data, signature=signature, output_filter=tuple(request.output_filter)
            )
        except TFServingError:
            raise
        except (ValueError, TypeError, KeyError) as error:
            raise ResponseDecodeError(f"bad predict response: {error}", model=model) from error
        if request.output_filter:
            outputs = {name: outputs[name] for name in request.output_filter if name in outputs}
        # REST answers carry no model spec: echo the request's, as gRPC would resolve it.
        resolved = ModelSpec(
            model.name, version=model.version, signature=model.signature or DEFAULT_SIGNATURE
        )
        return PredictResult(outputs, model=resolved)

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
