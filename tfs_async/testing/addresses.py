"""Where an emulator listens: the address properties of ``ModelServer`` and ``ModelServerProcess``.

>>> host_for_url("::1"), host_for_url("127.0.0.1")
('[::1]', '127.0.0.1')
"""

from __future__ import annotations

__all__ = ["ListenerAddresses", "host_for_url"]


def host_for_url(host: str) -> str:
    """``host`` as it goes into a gRPC target or a URL: IPv6 literals get brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class ListenerAddresses:
    """``grpc_target`` and ``rest_url`` from ``host``, ``grpc_port`` and ``rest_port``.

    The bound ports are ``None`` while a listener is disabled or not started.
    """

    host: str
    grpc_port: int | None
    rest_port: int | None

    @property
    def _rest_scheme(self) -> str:
        return "http"

    @property
    def grpc_target(self) -> str:
        """``host:port`` of the gRPC listener (raises if gRPC is disabled or not started)."""
        if self.grpc_port is None:
            raise RuntimeError("the gRPC listener is not running")
        return f"{host_for_url(self.host)}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        """``http(s)://host:port`` of the REST listener (raises if disabled or not started)."""
        if self.rest_port is None:
            raise RuntimeError("the REST listener is not running")
        return f"{self._rest_scheme}://{host_for_url(self.host)}:{self.rest_port}"
