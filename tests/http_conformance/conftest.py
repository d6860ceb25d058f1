"""Both HTTP transports, for the tests that must hold for each of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tfs_async.transport.http import HttpTransport
from tfs_async.transport.http_lean import LeanHttpTransport

TRANSPORTS: dict[str, type[HttpTransport]] = {"aiohttp": HttpTransport, "lean": LeanHttpTransport}


@pytest.fixture(params=sorted(TRANSPORTS))
def http_kind(request: pytest.FixtureRequest) -> str:
    """The HTTP transport under test: ``"aiohttp"`` or ``"lean"``."""
    return str(request.param)


@pytest.fixture
def make_transport(http_kind: str) -> Callable[..., HttpTransport]:
    """``make_transport(base_url, **options)`` for the transport under test."""

    def make(base_url: str, **options: Any) -> HttpTransport:
        return TRANSPORTS[http_kind](base_url, **options)

    return make
