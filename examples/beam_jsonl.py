"""Apache Beam: JSON lines in, one prediction per line out, through TF Serving.

Each input line is ``{"id": ..., "x": [x0, x1, x2]}``; each output line is
``{"id": ..., "y": [...], "total": ..., "model": "half_plus_two/versions/7"}``.
Against the emulator (``examples/pipeline_models.py``) on this machine::

    PYTHONPATH=examples tfs-async serve --port 8500 --rest_api_port 8501 \\
        --python_models pipeline_models:build &
    python examples/beam_jsonl.py --target grpc://127.0.0.1:8500 \\
        --input rows.jsonl --output predictions

Any Beam runner runs it unchanged: add ``--runner=FlinkRunner`` / ``SparkRunner`` /
``DataflowRunner`` and that runner's options (the workers need ``tfs-async[beam]``
installed and must reach the target).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io import ReadFromText, WriteToText
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tfs_async.beam import TFServingModelHandler


def parse(line: str) -> tuple[Any, np.ndarray[Any, Any]]:
    """A JSON line as (id, one example); the id keys the prediction."""
    row = json.loads(line)
    return row["id"], np.asarray(row["x"], np.float32)


def to_json(keyed: tuple[Any, PredictionResult]) -> str:
    """One output line: the input's id, the model's outputs and who answered."""
    key, result = keyed
    return json.dumps(
        {
            "id": key,
            "y": result.inference["y"].tolist(),
            "total": float(result.inference["total"]),
            "model": result.model_id,
        }
    )


def build(
    pipeline: beam.Pipeline, *, input: str, output: str, handler: TFServingModelHandler
) -> None:
    """Read, predict, write: the pipeline's three steps."""
    (
        pipeline
        | "Read" >> ReadFromText(input)
        | "Parse" >> beam.Map(parse)
        | "Predict" >> RunInference(KeyedModelHandler(handler))
        | "Format" >> beam.Map(to_json)
        | "Write" >> WriteToText(output, file_name_suffix=".jsonl")
    )


def run(argv: Sequence[str] | None = None) -> None:
    """Parse the command line (ours, then Beam's options) and run the pipeline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True, help="grpc://host:8500 or http://host:8501")
    parser.add_argument("--model", default="half_plus_two")
    parser.add_argument("--input", required=True, help="JSON lines (a file or a glob)")
    parser.add_argument("--output", required=True, help="output prefix")
    parser.add_argument("--batch-size", type=int, default=256, help="examples per request")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    known, beam_args = parser.parse_known_args(argv)
    handler = TFServingModelHandler(
        known.target,
        known.model,
        max_batch_size=known.batch_size,
        timeout=known.timeout,
    )
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        build(pipeline, input=known.input, output=known.output, handler=handler)


if __name__ == "__main__":
    run()
