"""Run with -p no:asyncio: the async fixtures say what is missing; the child process and the
sync client work."""

from __future__ import annotations

import json
import urllib.request

import numpy as np

from tfs_async import Client, SyncClient, VersionState
from tfs_async.pytest_plugin import ServerProcess


def test_client(tfs_client: Client) -> None:
    raise AssertionError("tfs_client must not start without pytest-asyncio")


def test_process(tfs_server_process: ServerProcess) -> None:
    url = f"{tfs_server_process.rest_url}/v1/models/half_plus_two"
    with urllib.request.urlopen(url, timeout=30) as response:
        status = json.load(response)
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


def test_sync_client(tfs_sync_client: SyncClient) -> None:
    # A plain test, no event loop of its own: the sync client talks to the child process.
    result = tfs_sync_client.predict("half_plus_two", {"x": np.array([[2.0]], np.float32)})
    assert result.output.tolist() == [[3.0]]
    assert tfs_sync_client.status("half_plus_two")[0].state == VersionState.AVAILABLE
