"""What the benchmark drives: the SDK's client over each protocol, and the harness's no-op.

A *contender* opens its connections once, then for each payload ``prepare`` s a
``call()`` the load generators repeat. The baselines (floors, typical user code,
peer clients) are in :mod:`tfs_async.bench.baselines`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfs_async.bench.loadgen import Call
from tfs_async.bench.payloads import Payload, TargetModel

if TYPE_CHECKING:
    from tfs_async.client import Client
    from tfs_async.transport.base import Transport

__all__ = [
    "CALL_TIMEOUT_S",
    "ClientContender",
    "Contender",
    "Endpoints",
    "NoopContender",
    "Prepared",
]

#: every benchmark request is bounded: a stuck server shows as errors, not a hang
CALL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Endpoints:
    """Where the server listens: a gRPC ``host:port`` and a REST base URL."""

    grpc_target: str
    rest_url: str
    model: TargetModel


@dataclass(frozen=True)
class Prepared:
    """A ready-to-repeat request and what it puts on the wire (bytes; ``None`` if unknown)."""

    call: Call
    request_bytes: int | None = None
    response_bytes: int | None = None
    request_header_bytes: int | None = None
    response_header_bytes: int | None = None
    #: one response body as received (floors keep it to time the SDK's decoders on real bytes)
    sample_response: bytes | None = None


class Contender(abc.ABC):
    """One way of sending a Predict: a client, a baseline, or the harness itself."""

    #: unique key in reports, e.g. ``"tfs_async/grpc"``
    key: str = ""
    #: what it is, for humans
    label: str = ""
    #: ``"grpc"``, ``"http"`` or ``"none"``
    protocol: str = "none"
    #: ``"sdk"``, ``"floor"``, ``"typical"``, ``"peer"`` or ``"harness"``
    role: str = ""

    async def open(self, endpoints: Endpoints, *, max_concurrency: int) -> None:  # noqa: B027
        """Create connections (default: nothing to open)."""

    @abc.abstractmethod
    async def prepare(self, payload: Payload) -> Prepared:
        """Build the repeated call for ``payload`` (may send one request to learn sizes)."""

    async def close(self) -> None:  # noqa: B027
        """Release every connection (default: nothing to close)."""


class NoopContender(Contender):
    """The harness's own cost: a "request" that only yields to the event loop once.

    One loop turn is the least any real request costs; what this measures beyond
    it is the load loop itself (timing, histogram, worker scheduling).
    """

    key = "harness/noop"
    label = "harness overhead (no-op request through the same loop)"
    role = "harness"

    async def prepare(self, payload: Payload) -> Prepared:
        """A call that yields once and returns."""

        async def call() -> None:
            await asyncio.sleep(0)

        return Prepared(call)


class ClientContender(Contender):
    """The SDK's :class:`tfs_async.client.Client` over gRPC or HTTP.

    Default options except ``max_retries=0`` (a failure is counted, not retried) and,
    if given, ``pool_size``.
    """

    role = "sdk"

    def __init__(
        self,
        protocol: str,
        *,
        pool_size: int | None = None,
        variant: str = "",
        transport: Callable[[Endpoints, int | None], Transport] | None = None,
    ) -> None:
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        self.protocol = protocol
        #: another event loop or transport ("uvloop", "aiohttp", "lean"); "" for the client
        #: as users get it, the line the verdict judges
        self.variant = variant
        # A variant is its own line: "tfs_async/http+uvloop".
        self.key = f"tfs_async/{protocol}" + (f"+{variant}" if variant else "")
        self.label = f"tfs_async Client ({'gRPC' if protocol == 'grpc' else 'HTTP/REST'})" + (
            f", {variant}" if variant else ""
        )
        self._client: Client | None = None
        self._model = ""
        self._pool_size = pool_size
        self._transport = transport

    async def open(self, endpoints: Endpoints, *, max_concurrency: int) -> None:
        """Create the client (its own connection pool) and warm it up."""
        from tfs_async.client import Client

        target: str | Transport = (
            f"grpc://{endpoints.grpc_target}" if self.protocol == "grpc" else endpoints.rest_url
        )
        if self._transport is not None:
            target = self._transport(endpoints, self._pool_size)
        # no retries: every failed request must show up in the figures, not be retried away
        self._client = Client(
            target, timeout=CALL_TIMEOUT_S, max_retries=0, pool_size=self._pool_size
        )
        self._model = endpoints.model.name
        await self._client.connect(CALL_TIMEOUT_S)

    async def prepare(self, payload: Payload) -> Prepared:
        """``client.predict(model, inputs, signature=...)``; sizes from the SDK's own codecs."""
        client = self._client
        if client is None:
            raise RuntimeError(f"{self.key}: prepare() before open()")
        model, inputs, signature = self._model, payload.inputs, payload.signature

        async def call() -> Any:
            return await client.predict(model, inputs, signature=signature)

        return Prepared(call, request_bytes=self._request_size(payload))

    def _request_size(self, payload: Payload) -> int | None:
        try:
            if self.protocol == "grpc":
                from tfs_async.codec.predict_wire import encode_predict_request
                from tfs_async.types import ModelSpec

                spec = ModelSpec(self._model, signature=payload.signature)
                return len(encode_predict_request(spec, payload.inputs))
            from tfs_async.codec.json import encode_predict_body

            return len(encode_predict_body(payload.inputs, signature_name=payload.signature))
        except ImportError:
            return None

    async def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
