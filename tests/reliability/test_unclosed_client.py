"""A client never closed: released without noise, or one warning saying how to close it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    from tfs_async import Client
    from tfs_async.testing import ModelServer
    from tfs_async.testing.half_plus_two import half_plus_two_model

    async def main(protocol):
        server = ModelServer([half_plus_two_model()])
        await server.start()
        target = f"grpc://{server.grpc_target}" if protocol == "grpc" else server.rest_url
        client = Client(target, timeout=10.0)
        result = await client.predict("half_plus_two", {"x": np.array([1.0], np.float32)})
        print("answer", float(result.output[0]))
        await server.stop()
        return client  # kept alive past its loop, never closed

    protocol, how = sys.argv[1], sys.argv[2]
    if how == "run":
        asyncio.run(main(protocol))
    else:
        loop = asyncio.new_event_loop()
        kept = loop.run_until_complete(main(protocol))
        loop.close()
    """
)

NOISE = ("Task was destroyed", "Unclosed client session", "Exception ignored", "Traceback")


def _run(protocol: str, how: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", SCRIPT, protocol, how],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_client_left_open_in_asyncio_run_is_closed_quietly(protocol: str) -> None:
    done = _run(protocol, "run")
    assert done.returncode == 0, done.stderr
    assert "answer 2.5" in done.stdout
    assert done.stderr.strip() == ""


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_client_outliving_its_loop_warns_once_how_to_close_it(protocol: str) -> None:
    done = _run(protocol, "loop")
    assert done.returncode == 0, done.stderr
    assert "answer 2.5" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "never closed" in line]
    assert len(warnings) == 1, done.stderr
    assert "async with Client(...)" in warnings[0]
    assert "await client.close()" in warnings[0]
    assert "ResourceWarning" in warnings[0]
    assert not any(noise in done.stderr for noise in NOISE), done.stderr
