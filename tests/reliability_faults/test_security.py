"""TLS, mutual TLS and tokens over both transports, with trustme test certificates.

A certificate failure is deterministic: it must fail at once with a typed
error naming TLS (no retried UNAVAILABLE loop burning the deadline), and never
fall back to plaintext. Tokens go on every attempt and appear in no log
record, repr or error message. The emulator binds 127.0.0.1 unless told not to.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, within
from tests.support.harness import Certificates, listeners
from tfs_async.client import Client
from tfs_async.errors import (
    ConnectionFailedError,
    StatusCode,
    TFServingError,
    TLSError,
    UnavailableError,
)
from tfs_async.options import TLSConfig
from tfs_async.retry import RetryPolicy
from tfs_async.testing import Fault, FaultPlan, ModelServer, ServerCore
from tfs_async.testing.half_plus_two import half_plus_two_model
from tfs_async.testing.process import ModelServerProcess

X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}
Y = [2.5, 3.0, 4.5]
TOKEN = "Bearer tok-8f2b1c0e-SECRET"
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0.01, budget_min_retries=100)


@pytest_asyncio.fixture
async def core() -> AsyncIterator[ServerCore]:
    core = ServerCore([half_plus_two_model()])
    async with within(STEP):
        await core.start()
    yield core
    async with within(STEP):
        await core.stop()


@pytest.fixture(scope="module")
def certs() -> Certificates:
    return Certificates()


def _target(protocol: str, grpc_port: int, rest_port: int, *, secure: bool = True) -> str:
    if protocol == "grpc":
        return f"{'grpcs' if secure else 'grpc'}://127.0.0.1:{grpc_port}"
    return f"{'https' if secure else 'http'}://127.0.0.1:{rest_port}"


def _expired(certs: Certificates) -> Certificates:
    """The same CA, with a server certificate for localhost that expired yesterday."""
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = Certificates(certs.ca)
    expired.server = certs.ca.issue_cert(
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    return expired


async def _fails_closed_at_once(target: str, tls: TLSConfig | None, says: str) -> TLSError:
    # Retries allowed and a long deadline: a TLS failure must use neither.
    async with Client(target, tls=tls, timeout=STEP, max_retries=3, retry=QUICK) as client:
        started = time.monotonic()
        with pytest.raises(TLSError) as caught:
            async with within(STEP):
                await client.predict("half_plus_two", X)
        elapsed = time.monotonic() - started
    error = caught.value
    assert error.attempts == 1, f"a TLS failure was retried: {error.previous}"
    assert not isinstance(error, UnavailableError)
    assert says.lower() in str(error).lower(), str(error)
    assert elapsed < STEP / 2
    return error


async def test_tls_works_on_both_transports(
    core: ServerCore, certs: Certificates, protocol: str
) -> None:
    async with listeners(core, certs=certs) as where:
        tls = TLSConfig(ca_cert=certs.ca_pem, server_name="localhost")
        client = Client(_target(protocol, where.grpc_port, where.rest_port), tls=tls, timeout=STEP)
        async with client, within(STEP):
            assert (await client.predict("half_plus_two", X)).output.tolist() == Y


async def test_wrong_ca_fails_closed(core: ServerCore, certs: Certificates, protocol: str) -> None:
    async with listeners(core, certs=certs) as where:
        tls = TLSConfig(ca_cert=Certificates().ca_pem, server_name="localhost")
        target = _target(protocol, where.grpc_port, where.rest_port)
        await _fails_closed_at_once(target, tls, "certificate")
    assert where.seen == []


async def test_expired_certificate_fails_closed(
    core: ServerCore, certs: Certificates, protocol: str
) -> None:
    async with listeners(core, certs=_expired(certs)) as where:
        tls = TLSConfig(ca_cert=certs.ca_pem, server_name="localhost")
        target = _target(protocol, where.grpc_port, where.rest_port)
        await _fails_closed_at_once(target, tls, "certificate")
    assert where.seen == []


async def test_wrong_host_name_fails_closed(
    core: ServerCore, certs: Certificates, protocol: str
) -> None:
    async with listeners(core, certs=certs) as where:
        tls = TLSConfig(ca_cert=certs.ca_pem, server_name="not-the-server.example")
        target = _target(protocol, where.grpc_port, where.rest_port)
        await _fails_closed_at_once(target, tls, "TLS")
    assert where.seen == []


async def test_mutual_tls_without_a_client_certificate_fails_closed(
    core: ServerCore, certs: Certificates, protocol: str
) -> None:
    """Refused by the server: the call fails and nothing reaches a handler.

    Under TLS 1.3 the client's side of the handshake is complete when the server
    refuses it, so the client sees a closed connection (gRPC "Socket closed",
    aiohttp ServerDisconnectedError) it cannot tell from a server going away: a
    ConnectionFailedError, retried within max_retries, never a success.
    """
    async with listeners(core, certs=certs, mtls=True) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        tls = TLSConfig(ca_cert=certs.ca_pem, server_name="localhost")
        async with Client(target, tls=tls, timeout=STEP, max_retries=1, retry=QUICK) as client:
            with pytest.raises((TLSError, ConnectionFailedError)):
                async with within(STEP):
                    await client.predict("half_plus_two", X)
        assert where.seen == []
        chain, key = certs.pems(certs.client)
        good = TLSConfig(
            ca_cert=certs.ca_pem, client_cert=chain, client_key=key, server_name="localhost"
        )
        async with Client(target, tls=good, timeout=STEP) as client, within(STEP):
            assert (await client.predict("half_plus_two", X)).output.tolist() == Y
    assert len(where.seen) >= 1


async def test_no_fallback_to_plaintext(core: ServerCore, protocol: str) -> None:
    """A TLS target in front of a plaintext server fails; nothing is sent in the clear."""
    async with listeners(core) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        await _fails_closed_at_once(target, TLSConfig(), "TLS")
    assert where.seen == []


async def test_tokens_go_on_every_attempt_and_nowhere_else(
    core: ServerCore, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    plan = FaultPlan(seed=5)
    plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE, times=2))
    caplog.set_level(logging.DEBUG)
    async with listeners(core, faults=plan) as where:
        target = _target(protocol, where.grpc_port, where.rest_port, secure=False)
        async with Client(
            target, timeout=STEP, max_retries=3, retry=QUICK, metadata={"authorization": TOKEN}
        ) as client:
            async with within(STEP):
                assert (await client.predict("half_plus_two", X)).output.tolist() == Y
            plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE))
            with pytest.raises(UnavailableError) as caught:
                async with within(STEP):
                    await client.predict("half_plus_two", X)
            texts = [
                repr(client),
                repr(client.options),
                repr(client.with_options(timeout=1.0).options),
                repr(client.transport),
                repr(vars(client.transport)),
            ]
    predicts = [h for h in where.seen if h[":path"].lower().endswith("predict")]
    assert len(predicts) == 3 + 4
    assert all(h.get("authorization") == TOKEN for h in predicts)
    error: TFServingError = caught.value
    texts += [str(error), repr(error)]
    texts += [f"{e!s} {e!r}" for e in error.previous]
    texts += [caplog.text, *(str(r.args) for r in caplog.records)]
    leaks = [t for t in texts if "SECRET" in t]
    assert leaks == []


async def test_the_emulator_binds_loopback_by_default() -> None:
    async with ModelServer([half_plus_two_model()]) as server:
        assert server.host == "127.0.0.1"
        listening = _listening_addresses()
        ports = (server.grpc_port, server.rest_port)
    assert None not in ports
    assert [listening.get(port or 0) for port in ports] == [{"127.0.0.1"}] * 2


def test_the_emulator_process_binds_loopback_by_default() -> None:
    with ModelServerProcess(
        python_models=["tfs_async.testing.half_plus_two:half_plus_two_model"]
    ) as server:
        ports = (server.grpc_port, server.rest_port)
        listening = _listening_addresses()
    assert None not in ports
    assert [listening.get(port or 0) for port in ports] == [{"127.0.0.1"}] * 2


def _listening_addresses() -> dict[int, set[str]]:
    """Port -> the IPv4/IPv6 addresses listening on it, from /proc/net/tcp{,6}."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            found.setdefault(int(port, 16), set()).add(_address(address))
    return found


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ".".join(str(b) for b in reversed(raw))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    # An IPv4-mapped address (::ffff:127.0.0.1) is the IPv4 one.
    return str(address.ipv4_mapped or address)
