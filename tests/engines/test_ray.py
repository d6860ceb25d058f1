"""Ray Data map_batches through TFServingPredictor on a local Ray, over gRPC and REST."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ray

from tests.engines.conftest import MODEL, ROWS, STEP, dead_target, expected_y, rows
from tfs_async import (
    ConnectionFailedError,
    InvalidInputError,
    NotFoundError,
    NotSentError,
    UnavailableError,
)
from tfs_async.ray import TFServingPredictor

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the module (it takes tens of seconds to start)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def qualified(error: type[BaseException]) -> str:
    return f"{error.__module__}.{error.__qualname__}"


def predict(target: str, dataset: ray.data.Dataset, **kwargs: Any) -> ray.data.Dataset:
    options: dict[str, Any] = {"target": target, "model": MODEL, "timeout": STEP}
    options.update(kwargs.pop("options", {}))
    return dataset.map_batches(
        TFServingPredictor, fn_constructor_kwargs=options, concurrency=2, **kwargs
    )


def ten_thousand() -> ray.data.Dataset:
    x = rows()
    return ray.data.from_items([{"id": i, "x": x[i]} for i in range(ROWS)])


def test_ten_thousand_rows(target: str) -> None:
    out = predict(target, ten_thousand(), batch_size=500, options={"request_batch_size": 100})
    result = out.to_pandas()
    assert len(result) == ROWS
    result = result.sort_values("id")
    assert result["id"].tolist() == list(range(ROWS))
    x = rows()
    np.testing.assert_array_equal(np.stack(result["x"].to_numpy()), x)
    np.testing.assert_allclose(np.stack(result["y"].to_numpy()), expected_y(x), rtol=1e-5)
    np.testing.assert_allclose(result["total"].to_numpy(), expected_y(x).sum(axis=1), rtol=1e-5)


def test_pandas_batches(target: str) -> None:
    x = rows(1000)
    out = predict(
        target,
        ray.data.from_items([{"id": i, "x": x[i]} for i in range(1000)]),
        batch_size=100,
        batch_format="pandas",
    )
    result = out.to_pandas().sort_values("id")
    np.testing.assert_allclose(np.stack(result["y"].to_numpy()), expected_y(x), rtol=1e-5)


def failure_of(dataset: ray.data.Dataset) -> str:
    """The text of the error the dataset fails with.

    Ray fails the task with a RayTaskError(UserCodeException) that carries the UDF's
    exception as traceback text: the exception object itself does not cross back.
    """
    with pytest.raises(ray.exceptions.RayTaskError) as caught:
        dataset.materialize()
    return str(caught.value)


def test_a_missing_model_fails_with_not_found(target: str) -> None:
    out = predict(target, ray.data.from_items([{"x": rows(1)[0]}]), options={"model": "nope"})
    assert re.search(rf"{qualified(NotFoundError)}: NOT_FOUND.*model 'nope'", failure_of(out))


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_dead_server_fails_with_unavailable(protocol: str) -> None:
    out = predict(
        dead_target(protocol),
        ray.data.from_items([{"x": rows(1)[0]}]),
        options={"timeout": 5.0, "max_retries": 1, "wait_for_ready": False},
    )
    text = failure_of(out)
    # Ray hands back only the error's text: any of the classes a dead server raises.
    names = (UnavailableError, ConnectionFailedError, NotSentError)
    assert any(qualified(error) in text for error in names), text


def test_a_bad_row_fails_with_invalid_argument(target: str) -> None:
    x = rows(20)
    items: list[dict[str, Any]] = [{"x": list(map(float, r))} for r in x]
    items.append({"x": [0.0, 0.0, 0.0, 0.0]})  # 4 values, not 3
    out = predict(target, ray.data.from_items(items), batch_size=8, options={"validate": True})
    text = failure_of(out)
    assert re.search(
        rf"{qualified(InvalidInputError)}: INVALID_ARGUMENT.*model 'half_plus_two'", text
    )


def test_the_json_lines_example(target: str, tmp_path: Path) -> None:
    import ray_jsonl

    x = rows()
    source = tmp_path / "rows.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "x": x[i].tolist()}) + "\n" for i in range(ROWS))
    )
    ray_jsonl.run([f"--target={target}", f"--input={source}", f"--output={tmp_path / 'out'}"])
    frames = [pd.read_json(path, lines=True) for path in sorted((tmp_path / "out").iterdir())]
    result = pd.concat(frames).sort_values("id")
    assert result["id"].tolist() == list(range(ROWS))
    y = np.array(result["y"].tolist(), np.float32)
    np.testing.assert_allclose(y, expected_y(x), rtol=1e-5)
