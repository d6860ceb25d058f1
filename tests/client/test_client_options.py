"""Targets, client options and their per-client overrides (no server needed)."""

from __future__ import annotations

import pytest

from tfs_async.client import Client
from tfs_async.options import ClientOptions, TLSConfig, normalize_metadata
from tfs_async.retry import RetryPolicy
from tfs_async.transport.grpc import GrpcTransport
from tfs_async.transport.http import HttpTransport
from tfs_async.transport.target import transport_for


@pytest.mark.parametrize(
    ("target", "kind", "address"),
    [
        ("grpc://h:8500", GrpcTransport, "h:8500"),
        ("grpcs://h:8500", GrpcTransport, "h:8500"),
        ("dns:///h:8500", GrpcTransport, "dns:///h:8500"),
        ("ipv4:127.0.0.1:1,127.0.0.1:2", GrpcTransport, "ipv4:127.0.0.1:1,127.0.0.1:2"),
        ("http://h:8501", HttpTransport, "http://h:8501"),
        ("https://h:8501/", HttpTransport, "https://h:8501"),
    ],
)
def test_targets_pick_the_transport(target: str, kind: type, address: str) -> None:
    transport = transport_for(target)
    assert isinstance(transport, kind)
    assert address in (getattr(transport, "target", None), getattr(transport, "base_url", None))


@pytest.mark.parametrize(
    "target", ["h:8500", "ftp://h", "http://h:8501/v1/models", "http://h:8501?x=1", "grpc://"]
)
def test_bad_targets_are_refused(target: str) -> None:
    with pytest.raises(ValueError, match=r"target|URL"):
        transport_for(target)


def test_grpcs_uses_tls_and_load_balanced_names_use_round_robin() -> None:
    secure = transport_for("grpcs://h:8500")
    assert isinstance(secure, GrpcTransport)
    assert secure._tls == TLSConfig()
    balanced = transport_for("ipv4:127.0.0.1:1,127.0.0.1:2")
    assert isinstance(balanced, GrpcTransport)
    assert ("grpc.lb_policy_name", "round_robin") in balanced._options
    plain = transport_for("grpc://h:8500")
    assert isinstance(plain, GrpcTransport)
    assert ("grpc.max_receive_message_length", 2**31 - 1) in plain._options
    assert ("grpc.use_local_subchannel_pool", 1) in plain._options


def test_with_options_overrides_only_what_it_names() -> None:
    client = Client("grpc://h:8500", timeout=5.0, max_retries=4, metadata={"A": "1"})
    other = client.with_options(timeout=1.0, metadata=[("b", "2")])
    assert other.options.timeout == 1.0
    assert other.options.max_retries == 4
    assert other.options.metadata == (("b", "2"),)
    assert client.options.metadata == (("a", "1"),)
    assert other.transport is client.transport
    with pytest.raises(TypeError):
        client.with_options(nonsense=1)


@pytest.mark.parametrize(
    "kwargs", [{"timeout": 0}, {"timeout": -1.0}, {"max_retries": -1}], ids=str
)
def test_invalid_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"timeout|max_retries"):
        ClientOptions(**kwargs)  # type: ignore[arg-type]


def test_defaults() -> None:
    options = ClientOptions()
    assert options.timeout == 60.0  # a stalled server never hangs a caller forever
    assert options.max_retries == 2
    assert options.retry == RetryPolicy()
    assert not options.validate
    assert normalize_metadata(None) == ()
