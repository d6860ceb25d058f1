"""Bad targets and options fail when the client is built, with a ValueError naming the problem.

Nothing here is dialled: a typo must never become a retried UNAVAILABLE.
"""

from __future__ import annotations

from typing import Any

import pytest

from tfs_async import Client
from tfs_async.retry import RetryPolicy
from tfs_async.transport.grpc import GrpcTransport
from tfs_async.transport.http import HttpTransport
from tfs_async.transport.target import split_target, transport_for


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("grpc://h:99999", r"port 99999 is out of range \(1-65535\)"),
        ("grpc://h:0", r"port 0 is out of range"),
        ("grpc://h:notaport", r"port 'notaport' is not a number"),
        ("grpc://h:", r"no port"),
        ("grpcs://h:-1", r"not a number"),
        ("http://h:99999", r"port 99999 is out of range"),
        ("http://h:abc", r"port 'abc' is not a number"),
        ("https://h:70000/", r"out of range"),
        ("ftp://h:21", r"unknown scheme 'ftp'"),
        ("grcp://h:8500", r"unknown scheme 'grcp'"),
        ("h:8500", r"unsupported target"),
        ("", r"expected a target string"),
        ("grpc://", r"names no host"),
        ("grpc://h:8500/v1", r"no path"),
        ("http://h:8501/v1/models", r"no path or query"),
        ("http://user:pw@h:8501", r"credentials in the URL"),
        ("ipv4:127.0.0.1", r"no port"),
        ("ipv4:127.0.0.1:1,127.0.0.1:99999", r"out of range"),
        ("ipv4:", r"expected ipv4:host:port"),
        ("dns:///h", r"no port"),
        ("dns:///h:x", r"not a number"),
        ("grpc://::1:8500", r"IPv6 address in brackets"),
    ],
)
def test_bad_targets_fail_at_construction(target: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Client(target)


def test_a_refused_target_names_itself() -> None:
    with pytest.raises(ValueError, match="out of range") as info:
        Client("grpc://serving.internal:99999")
    assert "grpc://serving.internal:99999" in str(info.value)


@pytest.mark.parametrize(
    ("target", "address"),
    [
        ("grpc://h", ("grpc", "h:8500")),
        ("grpcs://h/", ("grpcs", "h:8500")),
        ("http://h", ("http", "http://h:8501")),
        ("https://h", ("https", "https://h:8501")),
        ("grpc://[::1]", ("grpc", "[::1]:8500")),
        ("http://[::1]:9000", ("http", "http://[::1]:9000")),
        ("ipv4:127.0.0.1:1,127.0.0.1:2", ("grpc", "ipv4:127.0.0.1:1,127.0.0.1:2")),
        ("dns:///h:8500", ("grpc", "dns:///h:8500")),
        ("unix:/tmp/s.sock", ("grpc", "unix:/tmp/s.sock")),
    ],
)
def test_missing_ports_are_tf_servings(target: str, address: tuple[str, str]) -> None:
    # TF Serving listens on 8500 (gRPC) and 8501 (REST): never gRPC's 443 or HTTP's 80.
    assert split_target(target) == address


def test_the_default_ports_reach_the_transports() -> None:
    grpc_transport = transport_for("grpc://h")
    http_transport = transport_for("http://h")
    assert isinstance(grpc_transport, GrpcTransport)
    assert grpc_transport.target == "h:8500"
    assert isinstance(http_transport, HttpTransport)
    assert http_transport.base_url == "http://h:8501"


def test_a_transport_built_directly_checks_its_port_too() -> None:
    with pytest.raises(ValueError, match="out of range"):
        HttpTransport("http://h:99999")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": -3}, "pool_size"),
        ({"max_connection_age": 0}, "max_connection_age"),
        ({"metadata_ttl": -1.0}, "metadata_ttl"),
        ({"max_message_size": 0}, "max_message_size"),
        ({"max_message_size": 2**31}, "max_message_size"),
    ],
    ids=str,
)
@pytest.mark.parametrize("target", ["grpc://h:8500", "http://h:8501"])
def test_invalid_options_fail_at_construction(
    target: str, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Client(target, **options)


def test_invalid_per_call_options_fail_too() -> None:
    client = Client("grpc://h:8500")
    with pytest.raises(ValueError, match="timeout"):
        client.with_options(timeout=-1)
    with pytest.raises(ValueError, match="max_retries"):
        client.with_options(max_retries=-2)
    with pytest.raises(TypeError, match="wait_for_ready"):
        client.with_options(wait_for_redy=False)  # the known options are listed


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"max_retry_after": -1.0}, "max_retry_after"),
        ({"requeue_initial_backoff": 0.0}, "requeue"),
        ({"requeue_max_backoff": -1.0}, "requeue"),
        ({"initial_backoff": -0.1}, "backoff"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"budget_ratio": 2.0}, "budget_ratio"),
        ({"max_loading_retries": -1}, "max_loading_retries"),
    ],
    ids=str,
)
def test_invalid_retry_policies_are_refused(policy: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RetryPolicy(**policy)


def test_wait_for_ready_is_on_by_default_and_per_call() -> None:
    client = Client("http://h:8501")
    assert client.options.wait_for_ready is True
    fast = client.with_options(wait_for_ready=False)
    assert fast.options.wait_for_ready is False
    assert fast.transport is client.transport
    assert Client("http://h:8501", wait_for_ready=False).options.wait_for_ready is False
