"""The emulator's REST JSON work on big tensors: vectorized path against element by element.

Run: ``.venv/bin/python benchmarks/bench_emulator_json.py [--rounds N] [--big-rounds N]
[--out PATH]``.

For a float32 predict of each shape, times what the emulator's REST predict does
around the model: parse the body (:func:`parse_predict_body`), read the inputs
(:func:`predict_inputs_from_json`) and write the same array back as the output
(:func:`predict_outputs_to_json`, row and columnar). Each step runs with
``rest_json.dense`` (what the REST service runs, the candidate) and
``rest_json.request`` / ``rest_json.response`` (the element-by-element reference,
the baseline) on the same arrays, in interleaved
rounds; every round checks that both give identical tensors and bytes. The parse
has one implementation; its baseline is ``orjson.loads`` with the garbage collector
running, which is what it was before it paused the collector. The table shows
median times and the speed-up, median(baseline) / median(candidate).

Also timed, informational: the gRPC path's tensor codec on the same array
(``tensor_content`` decode, ``*_val`` encode), which is numpy throughout.

The table is printed and written as JSON (default
``benchmarks/results/emulator_json.json``). Absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tfs_async._proto import tensor_pb2, types_pb2
from tfs_async.codec.json import encode_predict_body
from tfs_async.codec.tensor import decode_tensor, encode_tensor
from tfs_async.testing.rest_json import dense, request, response

RESULTS = Path(__file__).resolve().parent / "results" / "emulator_json.json"
SHAPES = ((1, 224, 224, 3), (64, 224, 224, 3))


@dataclass
class Row:
    """One step on one shape: median seconds of each path."""

    shape: str
    step: str
    vectorized_s: float
    element_s: float | None

    @property
    def speedup(self) -> float | None:
        return None if self.element_s is None else self.element_s / self.vectorized_s


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _steps(array: np.ndarray[Any, Any], *, vectorized: bool) -> tuple[dict[str, float], Any]:
    """Time the REST steps once; return the times and what they produced."""
    body = encode_predict_body({"x": array})
    dtypes = {"x": types_pb2.DT_FLOAT}
    times: dict[str, float] = {}
    if vectorized:
        times["parse"], parsed = _timed(lambda: request.parse_predict_body(body))
    else:
        # The same parse without pausing the garbage collector, as it used to run.
        times["parse"] = _timed(lambda: orjson.loads(body))[0]
        parsed = request.parse_predict_body(body)
    reader, writer = (dense, dense) if vectorized else (request, response)
    times["inputs"], (tensors, fmt) = _timed(
        lambda: reader.predict_inputs_from_json(parsed, dtypes)
    )
    output = {"y": encode_tensor(array, as_content=False)}
    times["outputs row"], row = _timed(lambda: writer.predict_outputs_to_json(output, fmt))
    times["outputs columnar"], columnar = _timed(
        lambda: writer.predict_outputs_to_json(output, "columnar")
    )
    times["total (parse+inputs+row)"] = times["parse"] + times["inputs"] + times["outputs row"]
    x: tensor_pb2.TensorProto = tensors["x"]
    return times, (x.SerializeToString(), row, columnar)


def _grpc_steps(array: np.ndarray[Any, Any]) -> dict[str, float]:
    content = encode_tensor(array)
    return {
        "grpc decode tensor_content": _timed(lambda: decode_tensor(content))[0],
        "grpc encode *_val": _timed(lambda: encode_tensor(array, as_content=False))[0],
    }


def measure(shape: tuple[int, ...], rounds: int) -> list[Row]:
    rng = np.random.default_rng(0)
    array = rng.standard_normal(shape).astype(np.float32)
    fast: dict[str, list[float]] = {}
    slow: dict[str, list[float]] = {}
    grpc: dict[str, list[float]] = {}
    for index in range(rounds):
        order = (True, False) if index % 2 == 0 else (False, True)
        produced = []
        for vectorized in order:
            times, outcome = _steps(array, vectorized=vectorized)
            for step, seconds in times.items():
                (fast if vectorized else slow).setdefault(step, []).append(seconds)
            produced.append(outcome)
        if produced[0] != produced[1]:
            raise SystemExit(f"{shape}: vectorized and element-by-element results differ")
        for step, seconds in _grpc_steps(array).items():
            grpc.setdefault(step, []).append(seconds)
    label = "x".join(map(str, shape))
    rows = [
        Row(label, step, statistics.median(fast[step]), statistics.median(slow[step]))
        for step in fast
    ]
    rows += [Row(label, step, statistics.median(times), None) for step, times in grpc.items()]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds for the small shape")
    parser.add_argument("--big-rounds", type=int, default=3, help="rounds for the big shape")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for shape in SHAPES:
        rounds = args.rounds if shape[0] == 1 else args.big_rounds
        rows += measure(shape, rounds)
    print(f"{'shape':<14} {'step':<26} {'vectorized':>12} {'element':>12} {'speed-up':>9}")
    for row in rows:
        element = "" if row.element_s is None else f"{row.element_s * 1e3:10.1f}ms"
        speedup = "" if row.speedup is None else f"{row.speedup:8.1f}x"
        print(
            f"{row.shape:<14} {row.step:<26} {row.vectorized_s * 1e3:10.1f}ms"
            f" {element:>12} {speedup:>9}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "numpy": np.__version__,
                "rows": [asdict(row) | {"speedup": row.speedup} for row in rows],
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
