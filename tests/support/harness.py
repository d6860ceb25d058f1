"""The emulator's handlers behind listeners the tests configure: TLS, mTLS, request recording.

``ModelServer`` listens in plaintext; these tests need TLS and a view of what
reached the server (headers / call metadata), so they put the emulator's own
gRPC handlers and REST handler behind listeners built here.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import trustme
from aiohttp import web

from tfs_async.testing import ServerCore
from tfs_async.testing.faults import FaultPlan
from tfs_async.testing.grpc_service import GRPC_SERVER_OPTIONS, build_handlers
from tfs_async.testing.rest_service import RestService


@dataclass
class Listeners:
    """Where the listeners are, and the metadata/headers (plus ``:path``) of each request."""

    grpc_port: int
    rest_port: int
    seen: list[dict[str, str]] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)


class _Recorder(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Records each call's metadata, and the peer (client address) of unary calls."""

    def __init__(self, seen: list[dict[str, str]], peers: list[str]) -> None:
        self.seen = seen
        self.peers = peers

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        seen = {k: v for k, v in (details.invocation_metadata or ())}
        seen[":path"] = details.method
        self.seen.append(seen)
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self.peers.append(context.peer())
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclass
class Certificates:
    """A test CA, a server certificate for ``localhost`` and a client certificate."""

    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.server = self.ca.issue_cert("localhost")
        self.client = self.ca.issue_cert("client.example")

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def pems(self, cert: trustme.LeafCert) -> tuple[bytes, bytes]:
        """(certificate chain, private key) as PEM bytes."""
        chain = b"".join(p.bytes() for p in cert.cert_chain_pems)
        return chain, cert.private_key_pem.bytes()


@asynccontextmanager
async def listeners(
    core: ServerCore,
    *,
    certs: Certificates | None = None,
    mtls: bool = False,
    faults: FaultPlan | None = None,
) -> AsyncIterator[Listeners]:
    """gRPC and REST listeners on 127.0.0.1 for ``core``; TLS when ``certs`` is given."""
    seen: list[dict[str, str]] = []
    peers: list[str] = []
    server = grpc.aio.server(
        handlers=build_handlers(core, lambda: faults),
        interceptors=[_Recorder(seen, peers)],
        options=GRPC_SERVER_OPTIONS,
    )
    rest = RestService(core, faults=lambda: faults)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        seen.append({k.lower(): v for k, v in request.headers.items()} | {":path": request.path})
        return await rest.handle(request)

    context: ssl.SSLContext | None = None
    if certs is None:
        grpc_port = server.add_insecure_port("127.0.0.1:0")
    else:
        chain, key = certs.pems(certs.server)
        credentials = grpc.ssl_server_credentials(
            [(key, chain)],
            root_certificates=certs.ca_pem if mtls else None,
            require_client_auth=mtls,
        )
        grpc_port = server.add_secure_port("127.0.0.1:0", credentials)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certs.server.configure_cert(context)
        if mtls:
            certs.ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
    await server.start()
    runner = web.ServerRunner(web.Server(handle), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    rest_port = int(runner.addresses[0][1])
    try:
        yield Listeners(grpc_port, rest_port, seen, peers)
    finally:
        await server.stop(None)
        await runner.cleanup()
