"""A streaming pipeline: JSON lines in, ``Client.predict_stream`` (batched), JSON lines out.

    python examples/stream_jsonl.py grpc://localhost:8500 half_plus_two rows.jsonl > out.jsonl
    cat rows.jsonl | python examples/stream_jsonl.py http://localhost:8501 half_plus_two

Each input line is a JSON object of input name to one row (no batch dimension),
``{"x": 1.0}`` or ``{"x": [1.0, 2.0]}``; each output line answers the input line of
the same number: the row's outputs, ``{"y": 2.5}``, or ``{"error": ..., "line": n}``.
Concurrent rows are merged into batched requests (``Batching``); at most
``--in-flight`` lines are read ahead of the writer, so memory stays the same for
a thousand lines or a billion. (Reading stdin blocks the event loop between
lines, which is what a pipeline stage wants: nothing else runs in it.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import orjson

from tfs_async import Batching, Client


class Writer(Protocol):
    def write(self, text: str, /) -> int: ...


async def run_pipeline(
    client: Client,
    model: str,
    lines: Iterable[str],
    out: Writer,
    *,
    signature: str = "serving_default",
    max_in_flight: int = 256,
) -> int:
    """Predict one row per line of ``lines``, write one answer line per line; the failures."""
    metadata = await client.metadata(model)
    inputs = metadata.signatures[signature].inputs
    dtypes = {name: spec.numpy_dtype for name, spec in inputs.items()}

    def rows() -> Iterator[dict[str, Any] | Exception]:
        for number, line in enumerate(lines, 1):
            try:
                doc = orjson.loads(line)
                if not isinstance(doc, dict):
                    raise ValueError("expected a JSON object of input name -> row")
                # One row: add the batch dimension, in the signature's dtype.
                yield {k: np.asarray([v], dtype=dtypes.get(k)) for k, v in doc.items()}
            except (ValueError, TypeError) as error:
                yield ValueError(f"line {number}: {error}")

    failed = 0
    stream = client.predict_stream(
        model, rows(), signature=signature, max_in_flight=max_in_flight, on_error="return"
    )
    async with contextlib.aclosing(stream) as results:
        number = 0
        async for result in results:
            number += 1
            if isinstance(result, Exception):
                failed += 1
                answer: dict[str, Any] = {"error": str(result), "line": number}
            else:
                answer = {name: value[0] for name, value in result.items()}
            out.write(orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    return failed


async def _run(args: argparse.Namespace, source: Iterable[str]) -> int:
    batching = Batching(max_batch_size=args.batch_size)
    async with Client(args.target, batching=batching) as client:
        return await run_pipeline(
            client,
            args.model,
            source,
            sys.stdout,
            signature=args.signature,
            max_in_flight=args.in_flight,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="grpc://host:8500 or http://host:8501")
    parser.add_argument("model")
    parser.add_argument("input", nargs="?", default="-", help="JSON lines ('-': stdin)")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per request, at most")
    parser.add_argument("--in-flight", type=int, default=256, help="lines read ahead, at most")
    args = parser.parse_args(argv)
    if args.input == "-":
        failed = asyncio.run(_run(args, sys.stdin))
    else:
        with open(args.input, encoding="utf-8") as source:
            failed = asyncio.run(_run(args, source))
    if failed:
        print(f"{failed} lines failed", file=sys.stderr)
    return 1 if failed else 0


__all__ = ["main", "run_pipeline"]

if __name__ == "__main__":
    sys.exit(main())
