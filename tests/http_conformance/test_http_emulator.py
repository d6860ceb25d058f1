"""Both HTTP transports against the emulator: the same answers and errors, TLS, compression."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, half_plus_two, within
from tests.support.harness import Certificates, listeners
from tfs_async.client import Client
from tfs_async.errors import InvalidArgumentError, NotFoundError, TLSError
from tfs_async.options import TLSConfig
from tfs_async.testing import ModelServer, ServerCore

X = np.array([1.0, 2.0, 5.0], np.float32)


@pytest_asyncio.fixture
async def server(models_dir: Path) -> AsyncIterator[ModelServer]:
    async with within(STEP), ModelServer([half_plus_two(models_dir)], grpc_port=None) as server:
        yield server


@pytest.mark.parametrize("compress", [False, True])
async def test_calls_give_the_same_answers(
    server: ModelServer, http_kind: str, compress: bool
) -> None:
    async with (
        Client(
            server.rest_url, http_transport=http_kind, timeout=STEP, compress=compress
        ) as client,
        within(STEP),
    ):
        predicted = await client.predict("half_plus_two", {"x": X})
        big = await client.predict("half_plus_two", {"x": np.arange(150_000, dtype=np.float32)})
        classified = await client.classify(
            "half_plus_two", [{"x": 1.0}, {"x": 4.0}], signature="classify_x_to_y"
        )
        regressed = await client.regress(
            "half_plus_two", [{"x": 1.0}, {"x": 4.0}], signature="regress_x_to_y"
        )
        metadata = await client.metadata("half_plus_two")
        [status] = await client.status("half_plus_two")
    assert predicted.output.dtype == np.float32
    np.testing.assert_array_equal(predicted.output, [2.5, 3.0, 4.5])
    np.testing.assert_array_equal(big.output, np.arange(150_000, dtype=np.float32) * 0.5 + 2)
    np.testing.assert_array_equal(regressed.values, [2.5, 4.0])
    assert len(classified.classes) == 2
    assert set(metadata.signatures) >= {"serving_default", "classify_x_to_y"}
    assert (status.version, status.state.name) == (123, "AVAILABLE")


async def test_errors_are_the_same(server: ModelServer, http_kind: str) -> None:
    async with Client(server.rest_url, http_transport=http_kind, timeout=STEP) as client:
        with pytest.raises(NotFoundError) as missing:
            async with within(STEP):
                await client.predict("no_such_model", {"x": X})
        with pytest.raises(InvalidArgumentError) as bad:
            async with within(STEP):
                await client.predict("half_plus_two", {"nope": X})
    assert missing.value.http_status == 404
    assert "no_such_model" in missing.value.message
    assert bad.value.http_status == 400


async def test_many_concurrent_calls_share_a_bounded_pool(
    server: ModelServer, http_kind: str
) -> None:
    async with (
        Client(server.rest_url, http_transport=http_kind, timeout=STEP, pool_size=4) as client,
        within(STEP),
    ):
        results = await asyncio.gather(
            *(client.predict("half_plus_two", {"x": np.full(3, i, np.float32)}) for i in range(64))
        )
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.output, np.full(3, i * 0.5 + 2, np.float32))


@pytest.fixture(scope="module")
def certs() -> Certificates:
    return Certificates()


async def test_https_with_custom_ca_and_mutual_tls(
    models_dir: Path, certs: Certificates, http_kind: str
) -> None:
    core = ServerCore([half_plus_two(models_dir)])
    async with within(STEP):
        await core.start()
    try:
        async with listeners(core, certs=certs, mtls=True) as where:
            chain, key = certs.pems(certs.client)
            tls = TLSConfig(
                ca_cert=certs.ca_pem, client_cert=chain, client_key=key, server_name="localhost"
            )
            url = f"https://127.0.0.1:{where.rest_port}"
            async with (
                Client(url, tls=tls, http_transport=http_kind, timeout=STEP) as client,
                within(STEP),
            ):
                result = await client.predict("half_plus_two", {"x": X})
            np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])
            other = Certificates()
            untrusted = TLSConfig(ca_cert=other.ca_pem, server_name="localhost")
            async with Client(
                url, tls=untrusted, http_transport=http_kind, timeout=STEP, max_retries=0
            ) as client:
                with pytest.raises(TLSError):  # fails closed, and is not retried
                    async with within(STEP):
                        await client.predict("half_plus_two", {"x": X})
    finally:
        async with within(STEP):
            await core.stop()


def test_unknown_http_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="http_transport"):
        Client("http://127.0.0.1:1", http_transport="curl")


def test_without_httptools_the_error_says_what_to_install_or_use() -> None:
    code = (
        "import sys; sys.modules['httptools'] = None\n"
        "from tfs_async import Client\n"
        "try:\n"
        "    Client('http://127.0.0.1:1', http_transport='lean')\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "print(type(Client('http://127.0.0.1:1', http_transport='aiohttp').transport).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    message, aiohttp_transport = done.stdout.strip().splitlines()
    assert "pip install httptools" in message
    assert "http_transport='aiohttp'" in message
    assert aiohttp_transport == "HttpTransport"
