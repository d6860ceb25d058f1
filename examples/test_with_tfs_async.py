"""Testing your own code that calls TF Serving, with tfs_async's pytest fixtures.

Installed tfs-async (with pytest-asyncio: ``pip install 'tfs-async[pytest]'``)
gives every test suite the fixtures ``tfs_models``, ``tfs_server``,
``tfs_client`` and ``tfs_server_process``: no conftest, no import. Each test
that takes ``tfs_client`` runs twice, over gRPC and over HTTP.
"""

from __future__ import annotations

import numpy as np
import pytest

from tfs_async import Client
from tfs_async.testing import Fault, ModelServer, PythonModel, signature


# The code under test: a function of your service that calls TF Serving.
async def price(client: Client, sizes: list[float]) -> list[float]:
    result = await client.predict("half_plus_two", {"x": np.asarray(sizes, np.float32)})
    # The only output, whatever its name: over REST a predict fetches no metadata,
    # so a single output is named after the answer ("outputs"), not the signature.
    return [float(y) for y in result.output]


@pytest.mark.asyncio
async def test_half_plus_two(tfs_client: Client) -> None:
    # By default the server serves TF Serving's half_plus_two: y = 0.5 * x + 2.
    assert await price(tfs_client, [1.0, 2.0, 5.0]) == [2.5, 3.0, 4.5]


@pytest.mark.asyncio
async def test_my_service_retries(tfs_client: Client, tfs_server: ModelServer) -> None:
    # The next two predict calls fail with UNAVAILABLE; the client retries them.
    assert tfs_server.faults is not None
    rule = tfs_server.faults.add(Fault(method="predict", error_rate=1.0, times=2))
    assert await price(tfs_client, [2.0]) == [3.0]
    assert rule.hits == 2


class TestMyOwnModel:
    # Override tfs_models (here, for one class; in a module or conftest.py for more).
    @pytest.fixture
    def tfs_models(self) -> list[PythonModel]:
        scores = signature(
            lambda t: {"score": t["clicks"] / np.maximum(t["views"], 1)},
            inputs={"clicks": ("DT_FLOAT", [-1]), "views": ("DT_FLOAT", [-1])},
            outputs={"score": ("DT_FLOAT", [-1])},
        )
        return [PythonModel("ctr", {"serving_default": scores})]

    @pytest.mark.asyncio
    async def test_scores(self, tfs_client: Client) -> None:
        inputs = {"clicks": np.array([1, 0], np.float32), "views": np.array([4, 0], np.float32)}
        # With the metadata cached, a single output has its signature's name over REST too.
        await tfs_client.metadata("ctr")
        result = await tfs_client.predict("ctr", inputs)
        assert result["score"].tolist() == [0.25, 0.0]
