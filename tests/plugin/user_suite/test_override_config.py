"""tfs_models as a models.config path, as SavedModel objects and as a factory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tfs_async import Client
from tfs_async.testing import SavedModel

# TF Serving's saved_model_half_plus_two_cpu (its signatures are read without TensorFlow).
SAVED = Path(os.environ["TFS_HALF_PLUS_TWO_SAVED_MODEL"])


@pytest.fixture(params=["config", "saved_model", "factory"])
def tfs_models(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "config":
        config = tmp_path / "models.config"
        config.write_text(
            f'model_config_list {{ config {{ name: "hpt" base_path: "{SAVED}" '
            'model_platform: "tensorflow" } }'
        )
        return config
    if request.param == "saved_model":
        return [SavedModel("hpt", SAVED)]
    return "user_models:build"


@pytest.mark.asyncio
async def test_each_form_serves_its_model(tfs_client: Client) -> None:
    result = await tfs_client.predict("hpt", {"x": np.array([[2.0], [3.0]], np.float32)})
    assert result.output.tolist() == [[3.0], [3.5]]
    assert [status.version for status in await tfs_client.status("hpt")] == [123]
