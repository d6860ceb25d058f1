"""Ray Data: JSON lines in, one prediction per line out, through TF Serving.

Each input line is ``{"id": ..., "x": [x0, x1, x2]}``; each output line keeps
``id`` and ``x`` and adds the model's outputs ``y`` and ``total``. Against the
emulator (``examples/pipeline_models.py``) on this machine::

    PYTHONPATH=examples tfs-async serve --port 8500 --rest_api_port 8501 \\
        --python_models pipeline_models:build &
    python examples/ray_jsonl.py --target grpc://127.0.0.1:8500 \\
        --input rows.jsonl --output predictions/

On a Ray cluster, the same script runs with ``RAY_ADDRESS`` set (or ``ray job
submit``); ``--actors`` sets how many actors (each with its own connections) call
the server.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import ray

from tfs_async.ray import TFServingPredictor


def predict(
    dataset: ray.data.Dataset,
    *,
    target: str,
    model: str = "half_plus_two",
    actors: int = 2,
    batch_size: int = 1024,
    request_batch_size: int = 256,
    timeout: float = 30.0,
    cpus_per_actor: float = 0.5,
) -> ray.data.Dataset:
    """The dataset with the model's outputs as new columns."""
    return dataset.map_batches(
        TFServingPredictor,
        fn_constructor_kwargs={
            "target": target,
            "model": model,
            "request_batch_size": request_batch_size,
            "max_in_flight": 4,
            "timeout": timeout,
            "cast": True,  # JSON numbers arrive as float64; the signature takes float32
        },
        concurrency=actors,
        batch_size=batch_size,
        # The actors mostly wait on the network: a fraction of a CPU each leaves
        # CPUs to the read and write tasks (whole CPUs would starve them on a small node).
        num_cpus=cpus_per_actor,
    )


def run(argv: Sequence[str] | None = None) -> None:
    """Read the JSON lines, predict, write JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True, help="grpc://host:8500 or http://host:8501")
    parser.add_argument("--model", default="half_plus_two")
    parser.add_argument("--input", required=True, help="JSON lines (a file or a directory)")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--actors", type=int, default=2, help="actors calling the server")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per Ray batch")
    parser.add_argument("--request-batch-size", type=int, default=256, help="rows per request")
    args = parser.parse_args(argv)
    dataset = ray.data.read_json(args.input)
    predictions = predict(
        dataset,
        target=args.target,
        model=args.model,
        actors=args.actors,
        batch_size=args.batch_size,
        request_batch_size=args.request_batch_size,
    )
    predictions.write_json(args.output)


if __name__ == "__main__":
    run()
