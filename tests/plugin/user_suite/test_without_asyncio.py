"""Run with -p no:asyncio: the async fixtures say what is missing; the child process works."""

from __future__ import annotations

import json
import urllib.request

from tfs_async import Client
from tfs_async.pytest_plugin import ServerProcess


def test_client(tfs_client: Client) -> None:
    raise AssertionError("tfs_client must not start without pytest-asyncio")


def test_process(tfs_server_process: ServerProcess) -> None:
    url = f"{tfs_server_process.rest_url}/v1/models/half_plus_two"
    with urllib.request.urlopen(url, timeout=30) as response:
        status = json.load(response)
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
