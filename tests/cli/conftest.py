"""Fixtures of the command-line tests: one ``tfs-async serve`` child for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cli import PROTOCOLS, ServeProcess, start_serve


@pytest.fixture(scope="session")
def serve() -> Iterator[ServeProcess]:
    """``tfs-async serve`` with the models of ``cli_models`` (scale, tagger, scorer)."""
    server = start_serve("--python_models=tests.support.cli_models:build")
    try:
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs once per transport."""
    return str(request.param)


@pytest.fixture
def target(serve: ServeProcess, protocol: str) -> str:
    """The served target over ``protocol``."""
    return serve.target(protocol)
