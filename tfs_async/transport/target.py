"""Target strings: which transport a ``grpc://``, ``http://`` or gRPC name target means.

The concrete transport module is imported only for the target that needs it, so a
gRPC-only program never imports aiohttp and a REST-only one never imports grpc.
"""

from __future__ import annotations

from tfs_async.transport.base import Transport
from tfs_async.transport.tls import TLSConfig

__all__ = ["transport_for"]

_GRPC_NAME_PREFIXES = ("dns:", "ipv4:", "ipv6:", "unix:")


def transport_for(
    target: str,
    *,
    pool_size: int | None = None,
    tls: TLSConfig | None = None,
    max_connection_age: float | None = None,
    http_transport: str = "aiohttp",
) -> Transport:
    """The transport a target string names.

    ``grpc://host:port``, ``grpcs://host:port`` (TLS), ``http://host:port``,
    ``https://host:port``, or a gRPC name: ``dns:///host:port``,
    ``ipv4:a:p,b:p`` (several replicas, round robin), ``unix:path``.
    ``http_transport``: ``"aiohttp"`` (default) or ``"lean"``
    (:class:`~tfs_async.transport.http_lean.LeanHttpTransport`, the ``lean`` extra).

    >>> transport_for("grpc://localhost:8500").protocol
    'grpc'
    >>> transport_for("https://localhost:8501").protocol
    'http'
    """
    scheme, sep, rest = target.partition("://")
    if sep and scheme in ("grpc", "grpcs"):
        from tfs_async.transport.grpc import GrpcTransport

        if tls is None and scheme == "grpcs":
            tls = TLSConfig()
        return GrpcTransport(
            rest.rstrip("/"),
            pool_size=pool_size or 1,
            tls=tls,
            max_connection_age=max_connection_age,
        )
    if sep and scheme in ("http", "https"):
        if http_transport not in ("aiohttp", "lean"):
            raise ValueError(f"http_transport must be 'aiohttp' or 'lean', got {http_transport!r}")
        if http_transport == "lean":
            from tfs_async.transport.http_lean import LeanHttpTransport

            return LeanHttpTransport(target.rstrip("/"), pool_size=pool_size or 16, tls=tls)
        from tfs_async.transport.http import HttpTransport

        return HttpTransport(target.rstrip("/"), pool_size=pool_size or 16, tls=tls)
    if target.startswith(_GRPC_NAME_PREFIXES):
        from tfs_async.transport.grpc import GrpcTransport

        return GrpcTransport(
            target, pool_size=pool_size or 1, tls=tls, max_connection_age=max_connection_age
        )
    raise ValueError(
        f"unsupported target {target!r}: use grpc://host:8500, grpcs://, http://host:8501, "
        "https://, dns:///host:8500 or ipv4:a:port,b:port"
    )
