"""Overrides of tfs_models that cannot work: each test must error at setup, saying why."""

from __future__ import annotations

import pytest

from tfs_async import Client
from tfs_async.pytest_plugin import ServerProcess
from tfs_async.testing import ModelServer, PythonModel, signature


class TestNotModels:
    @pytest.fixture
    def tfs_models(self) -> object:
        return 42

    @pytest.mark.asyncio
    async def test_server(self, tfs_server: ModelServer) -> None:
        raise AssertionError("tfs_server must not start")


class TestMissingConfigFile:
    @pytest.fixture
    def tfs_models(self) -> object:
        return "no/such/models.config"

    @pytest.mark.asyncio
    async def test_client(self, tfs_client: Client) -> None:
        raise AssertionError("tfs_client must not start")


class TestFactoryThatIsNot:
    @pytest.fixture
    def tfs_models(self) -> object:
        return "user_models:no_such_function"

    @pytest.mark.asyncio
    async def test_server(self, tfs_server: ModelServer) -> None:
        raise AssertionError("tfs_server must not start")

    def test_process(self, tfs_server_process: ServerProcess) -> None:
        raise AssertionError("tfs_server_process must not start")


class TestPythonModelInAChildProcess:
    @pytest.fixture
    def tfs_models(self) -> object:
        sig = signature(lambda t: t, inputs={"x": "DT_FLOAT"}, outputs={"x": "DT_FLOAT"})
        return [PythonModel("identity", {"serving_default": sig})]

    def test_process(self, tfs_server_process: ServerProcess) -> None:
        raise AssertionError("tfs_server_process must not start")
