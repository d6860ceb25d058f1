"""TLS and mutual TLS over both transports, with trustme certificates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, half_plus_two, within
from tests.support.harness import Certificates, listeners
from tfs_async.client import Client
from tfs_async.errors import ConnectionFailedError, TLSError
from tfs_async.options import TLSConfig
from tfs_async.testing import ServerCore

X = np.array([1.0, 2.0, 5.0], np.float32)


@pytest_asyncio.fixture
async def core(models_dir: Path) -> AsyncIterator[ServerCore]:
    core = ServerCore([half_plus_two(models_dir)])
    async with within(STEP):
        await core.start()
    yield core
    async with within(STEP):
        await core.stop()


@pytest.fixture(scope="module")
def certs() -> Certificates:
    return Certificates()


def _target(protocol: str, grpc_port: int, rest_port: int) -> str:
    if protocol == "grpc":
        return f"grpcs://127.0.0.1:{grpc_port}"
    return f"https://127.0.0.1:{rest_port}"


async def test_tls_with_custom_ca(core: ServerCore, certs: Certificates, protocol: str) -> None:
    async with listeners(core, certs=certs) as where:
        tls = TLSConfig(ca_cert=certs.ca_pem, server_name="localhost")
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, tls=tls, timeout=STEP) as client:
            result = await client.predict("half_plus_two", {"x": X})
    np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])


async def test_untrusted_server_is_a_tls_failure(
    core: ServerCore, certs: Certificates, protocol: str
) -> None:
    other = Certificates()
    async with listeners(core, certs=certs) as where:
        tls = TLSConfig(ca_cert=other.ca_pem, server_name="localhost")
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, tls=tls, timeout=STEP, max_retries=0) as client:
            with pytest.raises(TLSError):
                await client.status("half_plus_two")


async def test_mutual_tls(
    core: ServerCore, certs: Certificates, protocol: str, tmp_path: Path
) -> None:
    chain, key = certs.pems(certs.client)
    # Certificates as files, the other accepted form.
    (tmp_path / "ca.pem").write_bytes(certs.ca_pem)
    (tmp_path / "client.pem").write_bytes(chain)
    (tmp_path / "client.key").write_bytes(key)
    tls = TLSConfig(
        ca_cert=tmp_path / "ca.pem",
        client_cert=str(tmp_path / "client.pem"),
        client_key=tmp_path / "client.key",
        server_name="localhost",
    )
    async with listeners(core, certs=certs, mtls=True) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, tls=tls, timeout=STEP) as client:
            result = await client.predict("half_plus_two", {"x": X})
        np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])
        without_cert = TLSConfig(ca_cert=certs.ca_pem, server_name="localhost")
        async with Client(target, tls=without_cert, timeout=STEP, max_retries=0) as client:
            with pytest.raises(ConnectionFailedError):
                await client.status("half_plus_two")


def test_client_cert_needs_its_key() -> None:
    with pytest.raises(ValueError, match="client_cert and client_key"):
        TLSConfig(client_cert=b"pem")
