"""Beam RunInference through TFServingModelHandler on the DirectRunner, over gRPC and REST."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import numpy.typing as npt
import pytest
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.testing.util import assert_that

from tests.engines.conftest import MODEL, ROWS, STEP, VERSION, dead_target, expected_y, rows
from tfs_async import InvalidArgumentError, NotFoundError, UnavailableError
from tfs_async.beam import TFServingModelHandler

pytestmark = pytest.mark.beam

Keyed = tuple[int, PredictionResult]


def model_id_for(target: str) -> str:
    # TF Serving's REST answer does not name the version that answered; gRPC's does.
    return f"{MODEL}/versions/{VERSION}" if target.startswith("grpc") else MODEL


def every_row_answered(x: npt.NDArray[np.float32], model_id: str) -> Callable[[list[Keyed]], None]:
    """A Beam matcher: one result per id, each the model's answer for that id's own row."""

    def check(actual: list[Keyed]) -> None:
        assert len(actual) == len(x)
        by_key = dict(actual)
        assert sorted(by_key) == list(range(len(x)))
        ordered = [by_key[i] for i in range(len(x))]
        np.testing.assert_array_equal(np.stack([r.example for r in ordered]), x)
        want = expected_y(x)
        # REST carries floats as text with six significant digits: relative 1e-5 is
        # still far tighter than the distance between two rows' answers.
        y = np.stack([r.inference["y"] for r in ordered])
        np.testing.assert_allclose(y, want, rtol=1e-5)
        total = np.array([r.inference["total"] for r in ordered])
        np.testing.assert_allclose(total, want.sum(axis=1), rtol=1e-5)
        assert {r.model_id for r in ordered} == {model_id}

    return check


def test_ten_thousand_keyed_rows(target: str) -> None:
    x = rows()
    handler = TFServingModelHandler(target, MODEL, max_batch_size=500, timeout=STEP)
    with beam.Pipeline() as pipeline:
        results = (
            pipeline
            | beam.Create([(i, x[i]) for i in range(ROWS)])
            | RunInference(KeyedModelHandler(handler))
        )
        assert_that(results, every_row_answered(x, model_id_for(target)))


def test_dict_examples_and_one_named_output(target: str) -> None:
    x = rows(300)
    handler = TFServingModelHandler(
        target, MODEL, version=VERSION, output="total", max_batch_size=64, timeout=STEP
    )

    def check(actual: list[PredictionResult]) -> None:
        assert len(actual) == len(x)
        for result in actual:
            row = result.example["x"]
            # One output asked for: the inference is that output's row alone.
            np.testing.assert_allclose(result.inference, expected_y(row).sum(), rtol=1e-5)
            assert result.model_id == f"{MODEL}/versions/{VERSION}"  # pinned: known on REST too

    with beam.Pipeline() as pipeline:
        results = pipeline | beam.Create([{"x": r} for r in x]) | RunInference(handler)
        assert_that(results, check)


def test_batches_follow_batch_elements_kwargs() -> None:
    handler = TFServingModelHandler(
        "grpc://127.0.0.1:1", MODEL, min_batch_size=4, max_batch_size=32, timeout=STEP
    )
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 32}
    keyed = KeyedModelHandler(handler)
    assert keyed.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 32}


def test_a_missing_model_fails_the_pipeline_with_not_found(target: str) -> None:
    handler = TFServingModelHandler(target, "no_such_model", timeout=STEP)
    with pytest.raises(NotFoundError, match="no_such_model"), beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create(list(rows(5))) | RunInference(handler)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_dead_server_fails_the_pipeline_with_unavailable(protocol: str) -> None:
    # By default a call waits for a server within its deadline (a restart is ridden through);
    # wait_for_ready=False makes a dead server fail the bundle at once, for Beam to retry.
    handler = TFServingModelHandler(
        dead_target(protocol), MODEL, timeout=5.0, max_retries=1, wait_for_ready=False
    )
    with pytest.raises(UnavailableError), beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create(list(rows(5))) | RunInference(handler)


def test_a_bad_row_fails_the_pipeline_with_invalid_argument(target: str) -> None:
    examples = [*rows(20), np.zeros(4, np.float32)]  # one row of 4 values, not 3
    handler = TFServingModelHandler(target, MODEL, max_batch_size=8, timeout=STEP, validate=True)
    with pytest.raises(InvalidArgumentError), beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create(examples) | RunInference(handler)


def test_a_bad_row_goes_to_the_dead_letter_output(target: str) -> None:
    good = rows(40)
    bad = np.zeros(4, np.float32)

    def check_good(actual: list[PredictionResult]) -> None:
        # Every row answered is its own row's answer; the rows not answered were
        # batched with the bad row.
        for result in actual:
            np.testing.assert_allclose(result.inference["y"], expected_y(result.example), rtol=1e-5)

    def check_failed(actual: list[tuple[list[npt.NDArray[Any]], tuple[type, str, Any]]]) -> None:
        # Beam's dead letters: (the failed batch, (exception type, its repr, traceback)).
        failed_rows = [row for batch, _ in actual for row in batch]
        assert [row.shape for row in failed_rows].count((4,)) == 1
        for _, (error_type, text, _) in actual:
            assert issubclass(error_type, InvalidArgumentError)
            # Names the model and the shape at fault: the signature's (a batch of bad
            # rows, checked against the metadata) or the batch's first row's.
            assert "half_plus_two" in text
            assert "[-1, 3]" in text or "(3,)" in text

    # validate=True: the client checks each batch against the model's metadata.
    handler = TFServingModelHandler(target, MODEL, max_batch_size=8, timeout=STEP, validate=True)
    with beam.Pipeline() as pipeline:
        main, other = (
            pipeline | beam.Create([*good, bad]) | RunInference(handler).with_exception_handling()
        )
        assert_that(main, check_good, label="good")
        assert_that(other.failed_inferences, check_failed, label="failed")


def test_the_json_lines_example(target: str, tmp_path: Path) -> None:
    import beam_jsonl

    x = rows()
    source = tmp_path / "rows.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "x": x[i].tolist()}) + "\n" for i in range(ROWS))
    )
    beam_jsonl.run(
        [
            f"--target={target}",
            f"--input={source}",
            f"--output={tmp_path / 'predictions'}",
            "--batch-size=500",
            "--runner=DirectRunner",
        ]
    )
    lines = [
        json.loads(line)
        for path in sorted(tmp_path.glob("predictions*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(lines) == ROWS
    by_id = {line["id"]: line for line in lines}
    assert sorted(by_id) == list(range(ROWS))
    y = np.array([by_id[i]["y"] for i in range(ROWS)], np.float32)
    np.testing.assert_allclose(y, expected_y(x), rtol=1e-5)
    assert {line["model"] for line in lines} == {model_id_for(target)}
