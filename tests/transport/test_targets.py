"""Target strings: which transport each names, and the ones refused (no server needed)."""

from __future__ import annotations

import pytest

from tfs_async.transport.grpc import GrpcTransport
from tfs_async.transport.http import HttpTransport
from tfs_async.transport.target import transport_for
from tfs_async.transport.tls import TLSConfig


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
