"""Target strings parsed and checked: scheme, host and port, without any transport.

Every target is checked here, when the client is built, so that a typo fails at
once with a ValueError naming the problem instead of being dialled and retried
as UNAVAILABLE. A ``grpc://`` / ``grpcs://`` target without a port gets TF
Serving's gRPC port, 8500; an ``http://`` / ``https://`` one its REST port, 8501
(``tensorflow_model_server``'s defaults). gRPC names (``dns:``, ``ipv4:``,
``ipv6:``) must name their ports: gRPC itself would pick 443.

>>> split_target("grpc://localhost")
('grpc', 'localhost:8500')
>>> split_target("http://[::1]:9000/")
('http', 'http://[::1]:9000')
>>> split_target("grpc://h:99999")
Traceback (most recent call last):
...
ValueError: target 'grpc://h:99999': port 99999 is out of range (1-65535)
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["DEFAULT_GRPC_PORT", "DEFAULT_REST_PORT", "split_target"]

#: ``tensorflow_model_server --port``'s default
DEFAULT_GRPC_PORT = 8500
#: ``tensorflow_model_server --rest_api_port``'s usual value
DEFAULT_REST_PORT = 8501

_GRPC_NAME_PREFIXES = ("dns:", "ipv4:", "ipv6:", "unix:")
_HINT = (
    "use grpc://host:8500, grpcs://, http://host:8501, https://, "
    "dns:///host:8500 or ipv4:a:port,b:port"
)


def _port(text: str, target: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"target {target!r}: port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"target {target!r}: port {port} is out of range (1-65535)")
    return port


def _host_port(address: str, target: str, default: int | None) -> str:
    """``host:port`` checked (IPv6 in brackets); ``default`` for a missing port, or an error."""
    if address.startswith("["):
        host, bracket, rest = address.partition("]")
        if not bracket or len(host) < 2 or (rest and not rest.startswith(":")):
            raise ValueError(f"target {target!r}: malformed IPv6 address {address!r}")
        host, port_text = host + "]", rest[1:] if rest else None
    else:
        host, colon, port_text_raw = address.rpartition(":")
        if not colon:
            host, port_text = address, None
        elif ":" in host:
            raise ValueError(f"target {target!r}: put an IPv6 address in brackets, [::1]:8500")
        else:
            port_text = port_text_raw
    if not host or any(c in host for c in "/?#@ "):
        raise ValueError(f"target {target!r}: bad host {host!r}")
    if port_text is None or port_text == "":
        if port_text == "" or default is None:
            raise ValueError(
                f"target {target!r}: no port in {address!r}; name it, e.g. {host}:8500"
            )
        return f"{host}:{default}"
    return f"{host}:{_port(port_text, target)}"


def _grpc_name(target: str) -> str:
    """A gRPC name target with its ports checked (``unix:`` paths pass as they are)."""
    scheme, _, rest = target.partition(":")
    if scheme == "unix":
        if not rest:
            raise ValueError(f"target {target!r}: no socket path")
        return target
    if scheme == "dns":
        # dns:host:port, dns:///host:port or dns://authority/host:port
        name = rest.split("/")[-1] if rest.startswith("//") else rest
        _host_port(name, target, None)
        return target
    addresses = [a for a in rest.split(",")]
    if not rest or any(not a for a in addresses):
        raise ValueError(f"target {target!r}: expected {scheme}:host:port[,host:port...]")
    for address in addresses:
        _host_port(address, target, None)
    return target


def split_target(target: str) -> tuple[str, str]:
    """``(protocol, address)`` for a target string, checked; ValueError naming the problem.

    ``address`` is ``host:port`` or a gRPC name for ``"grpc"`` / ``"grpcs"``, a
    base URL with its port for ``"http"`` / ``"https"``.
    """
    if not isinstance(target, str) or not target:
        raise ValueError(f"expected a target string, got {target!r}: {_HINT}")
    scheme, sep, rest = target.partition("://")
    if sep and scheme in ("grpc", "grpcs"):
        address = rest[:-1] if rest.endswith("/") else rest
        if not address:
            raise ValueError(f"target {target!r} names no host: {_HINT}")
        if "/" in address or "?" in address:
            raise ValueError(f"target {target!r}: a gRPC target has no path or query")
        return scheme, _host_port(address, target, DEFAULT_GRPC_PORT)
    if sep and scheme in ("http", "https"):
        parts = urlsplit(target)
        if not parts.netloc or not parts.hostname:
            raise ValueError(f"target {target!r} names no host: {_HINT}")
        if parts.query or parts.fragment or parts.path.strip("/"):
            raise ValueError(f"target {target!r}: the base URL must have no path or query")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                f"target {scheme}://...@{parts.hostname}: credentials in the URL are not "
                "supported; pass them as metadata={'authorization': ...}"
            )
        host_port = _host_port(parts.netloc, target, DEFAULT_REST_PORT)
        return scheme, f"{scheme}://{host_port}"
    if target.startswith(_GRPC_NAME_PREFIXES):
        return "grpc", _grpc_name(target)
    if sep:
        raise ValueError(f"target {target!r}: unknown scheme {scheme!r}; {_HINT}")
    raise ValueError(f"unsupported target {target!r}: {_HINT}")
