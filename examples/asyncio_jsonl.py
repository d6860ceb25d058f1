"""asyncio: JSON lines in, one prediction per line out, through TF Serving, in one process.

The same job as ``beam_jsonl.py`` and ``ray_jsonl.py`` without an engine: rows are
read in requests of ``--batch-size`` rows, at most ``--concurrency`` requests in
flight, and written in input order. Against the emulator
(``examples/pipeline_models.py``) on this machine::

    PYTHONPATH=examples tfs-async serve --port 8500 --rest_api_port 8501 \\
        --python_models pipeline_models:build &
    python examples/asyncio_jsonl.py --target grpc://127.0.0.1:8500 \\
        --input rows.jsonl --output predictions.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfs_async import Client


def chunks(path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    """The input's rows, ``size`` at a time."""
    chunk: list[dict[str, Any]] = []
    with path.open() as lines:
        for line in lines:
            chunk.append(json.loads(line))
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


async def predict_file(
    target: str,
    source: Path,
    output: Path,
    *,
    model: str = "half_plus_two",
    batch_size: int = 256,
    concurrency: int = 4,
    timeout: float = 30.0,
) -> int:
    """Predict every row of ``source`` into ``output``; returns the rows written."""
    async with Client(target, timeout=timeout) as client:
        in_flight = asyncio.Semaphore(concurrency)

        async def predict(rows: list[dict[str, Any]]) -> list[str]:
            x = np.array([row["x"] for row in rows], np.float32)
            try:
                result = await client.predict(model, {"x": x})
            finally:
                in_flight.release()
            return [
                json.dumps({"id": row["id"], "y": y.tolist(), "total": float(total)})
                for row, y, total in zip(rows, result["y"], result["total"], strict=True)
            ]

        written = 0
        pending: list[asyncio.Task[list[str]]] = []
        with output.open("w") as out:
            for rows in chunks(source, batch_size):
                await in_flight.acquire()  # at most `concurrency` requests in flight
                pending.append(asyncio.create_task(predict(rows)))
                while pending and pending[0].done():  # write in input order as answers come
                    lines = pending.pop(0).result()
                    out.write("".join(f"{line}\n" for line in lines))
                    written += len(lines)
            for task in pending:
                lines = await task
                out.write("".join(f"{line}\n" for line in lines))
                written += len(lines)
        return written


def run(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True, help="grpc://host:8500 or http://host:8501")
    parser.add_argument("--model", default="half_plus_two")
    parser.add_argument("--input", required=True, type=Path, help="JSON lines")
    parser.add_argument("--output", required=True, type=Path, help="JSON lines written")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    args = parser.parse_args(argv)
    return asyncio.run(
        predict_file(
            args.target,
            args.input,
            args.output,
            model=args.model,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
        )
    )


if __name__ == "__main__":
    print(run(), "rows")
