"""``--ca/--cert/--key/--server-name``: the command line over (mutual) TLS, both transports."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import trustme

from tests.support.cli import PROCESS_TIMEOUT, PROTOCOLS, child_env, within
from tests.support.cli_models import build
from tfs_async.testing import ModelServer


class Certificates:
    """A test CA, a server certificate for ``localhost`` and a client certificate, as files."""

    def __init__(self, where: Path) -> None:
        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("localhost")
        client = self.ca.issue_cert("client.example")
        self.ca_file = where / "ca.pem"
        self.cert_file = where / "client.pem"
        self.key_file = where / "client.key"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file.write_bytes(b"".join(p.bytes() for p in client.cert_chain_pems))
        client.private_key_pem.write_to_path(str(self.key_file))


@pytest_asyncio.fixture
async def mtls_server(tmp_path: Path) -> AsyncIterator[tuple[ModelServer, Certificates]]:
    certs = Certificates(tmp_path)
    chain = b"".join(p.bytes() for p in certs.server.cert_chain_pems)
    key = certs.server.private_key_pem.bytes()
    credentials = grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=certs.ca.cert_pem.bytes(), require_client_auth=True
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.server.configure_cert(context)
    certs.ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    server = ModelServer(build(), grpc_credentials=credentials, ssl_context=context)
    async with within(PROCESS_TIMEOUT):
        await server.start()
    try:
        yield server, certs
    finally:
        async with within(PROCESS_TIMEOUT):
            await server.stop()


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tfs_async.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    try:
        async with within(PROCESS_TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_mutual_tls(mtls_server: tuple[ModelServer, Certificates], protocol: str) -> None:
    server, certs = mtls_server
    port = server.grpc_port if protocol == "grpc" else server.rest_port
    target = f"{'grpcs' if protocol == 'grpc' else 'https'}://127.0.0.1:{port}"
    tls = ["--ca", str(certs.ca_file), "--server-name", "localhost"]
    client = ["--cert", str(certs.cert_file), "--key", str(certs.key_file)]

    code, out, err = await _cli(
        "predict", target, "half_plus_two", "--input_exprs", "x=[1]", *tls, *client, "--json"
    )
    assert code == 0, err
    assert '"y": [2.5]' in out

    # Without a client certificate the server refuses the connection: one line, exit 1.
    code, _, err = await _cli("status", target, "half_plus_two", "--retries", "0", *tls)
    assert code == 1
    assert err.startswith("tfs-async: error: UNAVAILABLE")
    assert err.count("\n") == 1
