"""A module that overrides tfs_models with its own Python model."""

from __future__ import annotations

import numpy as np
import pytest

from tfs_async import Client, NotFoundError
from tfs_async.testing import PythonModel, signature


@pytest.fixture
def tfs_models() -> list[PythonModel]:
    triple = signature(
        lambda t: {"y": t["x"] * 3},
        inputs={"x": ("DT_INT64", [-1])},
        outputs={"y": ("DT_INT64", [-1])},
    )
    return [PythonModel("triple", {"serving_default": triple})]


@pytest.mark.asyncio
async def test_serves_the_override_only(tfs_client: Client) -> None:
    result = await tfs_client.predict("triple", {"x": np.array([1, 7], np.int64)})
    assert result.output.tolist() == [3, 21]
    with pytest.raises(NotFoundError):
        await tfs_client.predict("half_plus_two", {"x": np.array([1.0], np.float32)})
