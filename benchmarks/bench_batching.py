"""Client-side micro-batching: 256 concurrent one-row callers, with and without MicroBatcher.

Run: ``.venv/bin/python benchmarks/bench_batching.py [--duration 2] [--repeats 3]``.

The server is the emulator in its own process (``ModelServerProcess``) serving the
benchmark's identity model (``tfs_async.bench.models``). 256 closed-loop callers
each predict one float32 (1, 10) row, back to back:

* baseline: every caller calls ``Client.predict`` (one request per call);
* batched: every caller calls ``MicroBatcher.predict`` on one shared batcher.

Per protocol (gRPC, HTTP) the two are measured in the same run, repeats interleaved
(baseline, batched, baseline, batched...), medians reported: caller requests/s
(calls answered per second, not server requests), p50 and p99 latency per call,
and the ratio batched/baseline of requests/s. Results are printed and written to
``benchmarks/results/batching.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfs_async.bench.loadgen import LoadResult, closed_loop
from tfs_async.bench.models import FLOAT_INPUT, MODEL_NAME
from tfs_async.bench.stats import median
from tfs_async.client import Client
from tfs_async.testing.process import ModelServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "batching.json"
ROW = np.random.default_rng(0).random((1, 10), dtype=np.float32)
CALLERS = 256
Call = Callable[[], Awaitable[Any]]


def figures(runs: list[LoadResult]) -> dict[str, Any]:
    """Medians over repeats of one contender."""
    return {
        "rps": median([r.rps for r in runs]),
        "p50_ms": median([r.histogram.percentile_us(50) / 1000 for r in runs]),
        "p99_ms": median([r.histogram.percentile_us(99) / 1000 for r in runs]),
        "cpu_us_per_call": median([r.cpu_us_per_request for r in runs]),
        "errors": sum(r.error_count for r in runs),
        "first_error": next((r.first_error for r in runs if r.first_error), None),
    }


async def protocol_figures(protocol: str, target: str, args: argparse.Namespace) -> dict[str, Any]:
    """Baseline and batched runs for one protocol, interleaved."""
    pool_size = 64 if protocol == "http" else None
    async with Client(target, timeout=60, pool_size=pool_size) as client:
        batcher = client.batcher(
            MODEL_NAME, max_batch_size=args.max_batch_size, max_delay=args.max_delay
        )

        async def plain() -> Any:
            return await client.predict(MODEL_NAME, {FLOAT_INPUT: ROW})

        async def batched() -> Any:
            result = await batcher.predict({FLOAT_INPUT: ROW})
            if result["y"].shape != ROW.shape:  # a wrong split must not count as a success
                raise AssertionError(f"got shape {result['y'].shape}")
            return result

        contenders: dict[str, Call] = {"baseline": plain, "batched": batched}
        runs: dict[str, list[LoadResult]] = {name: [] for name in contenders}
        async with batcher:
            for _ in range(args.repeats):
                for name, call in contenders.items():
                    runs[name].append(
                        await closed_loop(
                            call,
                            concurrency=CALLERS,
                            duration_s=args.duration,
                            warmup_s=args.warmup,
                        )
                    )
    med = {name: figures(rs) for name, rs in runs.items()}
    ratio = med["batched"]["rps"] / med["baseline"]["rps"] if med["baseline"]["rps"] else 0.0
    for name in contenders:
        m = med[name]
        print(
            f"{protocol:<5} {name:<9} {m['rps']:9.0f} calls/s  p50 {m['p50_ms']:8.2f} ms  "
            f"p99 {m['p99_ms']:8.2f} ms  cpu {m['cpu_us_per_call']:7.1f} us/call  "
            f"errors {m['errors']}",
            flush=True,
        )
    print(f"{protocol:<5} batched/baseline calls/s ratio {ratio:.2f}", flush=True)
    return {**med, "rps_ratio": ratio}


async def main(args: argparse.Namespace) -> int:
    async with ModelServerProcess(
        python_models=["tfs_async.bench.models:benchmark_models"], startup_timeout=60
    ) as server:
        report = {
            "machine_note": "client and server share this machine; server in its own process",
            "callers": CALLERS,
            "tensor": "float32 (1, 10) per caller",
            "max_batch_size": args.max_batch_size,
            "max_delay_s": args.max_delay,
            "duration_s": args.duration,
            "repeats": args.repeats,
            "grpc": await protocol_figures("grpc", f"grpc://{server.grpc_target}", args),
            "http": await protocol_figures("http", server.rest_url, args),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=0.3, help="seconds before measuring")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per figure")
    parser.add_argument("--max-batch-size", type=int, default=64, help="batcher max_batch_size")
    parser.add_argument("--max-delay", type=float, default=0.002, help="batcher max_delay (s)")
    sys.exit(asyncio.run(main(parser.parse_args())))
