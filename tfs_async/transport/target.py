"""Target strings: which transport a ``grpc://``, ``http://`` or gRPC name target means.

The target is parsed and checked by :mod:`tfs_async.transport.address`. The
concrete transport module is imported only for the target that needs it, so a
gRPC-only program never imports aiohttp and a REST-only one never imports grpc.

>>> transport_for("grpc://localhost:8500").protocol
'grpc'
"""

from __future__ import annotations

from tfs_async.transport.address import (
    DEFAULT_GRPC_PORT,
    DEFAULT_REST_PORT,
    split_target,
)
from tfs_async.transport.base import Transport
from tfs_async.transport.tls import TLSConfig

__all__ = [
    "DEFAULT_GRPC_PORT",
    "DEFAULT_HTTP_TRANSPORT",
    "DEFAULT_REST_PORT",
    "HTTP_TRANSPORTS",
    "split_target",
    "transport_for",
]

#: the HTTP transports ``http_transport=`` names
HTTP_TRANSPORTS = ("aiohttp", "lean")
#: the one ``http(s)://`` targets get unless ``http_transport=`` says otherwise
DEFAULT_HTTP_TRANSPORT = "lean"


def transport_for(
    target: str,
    *,
    pool_size: int | None = None,
    tls: TLSConfig | None = None,
    max_connection_age: float | None = None,
    max_message_size: int | None = None,
    http_transport: str | None = None,
) -> Transport:
    """The transport a target string names.

    ``grpc://host:port``, ``grpcs://host:port`` (TLS), ``http://host:port``,
    ``https://host:port``, or a gRPC name: ``dns:///host:port``,
    ``ipv4:a:p,b:p`` (several replicas, round robin), ``unix:path``. A bad
    target or option raises ValueError here, before anything is dialled.
    ``http_transport``: ``"aiohttp"`` (:class:`~tfs_async.transport.http.HttpTransport`)
    or ``"lean"`` (:class:`~tfs_async.transport.http_lean.LeanHttpTransport`);
    ``None``: :data:`DEFAULT_HTTP_TRANSPORT`.

    >>> transport_for("grpc://localhost:8500").protocol
    'grpc'
    >>> transport_for("https://localhost:8501").protocol
    'http'
    """
    protocol, address = split_target(target)
    if pool_size is not None and (
        isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1
    ):
        raise ValueError(f"pool_size must be an int >= 1, got {pool_size!r}")
    if max_connection_age is not None and not max_connection_age > 0:
        raise ValueError(f"max_connection_age must be > 0 seconds, got {max_connection_age!r}")
    if max_message_size is not None and (
        isinstance(max_message_size, bool)
        or not isinstance(max_message_size, int)
        or not 1 <= max_message_size <= 2**31 - 1
    ):
        raise ValueError(
            f"max_message_size must be an int of bytes within [1, 2**31 - 1], "
            f"got {max_message_size!r}"
        )
    if http_transport is None:
        http_transport = DEFAULT_HTTP_TRANSPORT
    if http_transport not in HTTP_TRANSPORTS:
        raise ValueError(f"http_transport must be 'aiohttp' or 'lean', got {http_transport!r}")
    if protocol in ("grpc", "grpcs"):
        from tfs_async.transport.grpc import MAX_MESSAGE_LENGTH, GrpcTransport

        if tls is None and protocol == "grpcs":
            tls = TLSConfig()
        return GrpcTransport(
            address,
            pool_size=pool_size or 1,
            tls=tls,
            max_connection_age=max_connection_age,
            max_message_length=max_message_size or MAX_MESSAGE_LENGTH,
        )
    if http_transport == "lean":
        from tfs_async.transport.http_lean import LeanHttpTransport

        return LeanHttpTransport(
            address, pool_size=pool_size or 16, tls=tls, max_message_size=max_message_size
        )
    from tfs_async.transport.http import HttpTransport

    return HttpTransport(
        address, pool_size=pool_size or 16, tls=tls, max_message_size=max_message_size
    )
