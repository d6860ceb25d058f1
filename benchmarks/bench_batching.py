"""Transparent batching: what it buys at load, what it costs when idle, what it costs per item.

Run: ``.venv/bin/python benchmarks/bench_batching.py [--duration 2] [--repeats 3]``
(``--stream-lines 1000000`` adds the streaming example over a million JSON lines).

The server is the emulator in its own process (``ModelServerProcess``, which runs
what ``tfs-async serve`` runs) serving the benchmark's identity model
(``tfs_async.bench.models``); every caller predicts one float32 (1, 10) row. Per
protocol (gRPC, HTTP), in the same run, repeats interleaved, medians reported:

1. **c=256**: 256 closed-loop callers of ``Client.predict``, without batching
   (baseline) and with ``Client(batching=Batching(...))``: rows/s, p50, p99, and
   the ratio batched/baseline of rows/s (target >= 25x) and of p99 (target <= 1).
2. **c=1**: one caller, plain client vs batching client (target >= 0.9x: a call
   arriving when nothing is in flight is sent at once).
3. **stream**: ``predict_stream`` over 100,000 rows (batching on,
   ``max_in_flight=256``), rows/s against the batched c=256 figure of step 1
   (target >= 90%).

Then, without a server: **batcher overhead per item**. 256 callers drive the
batcher (``Batcher.submit``) with a send callable that answers at once (an echo),
against the same callers calling the echo directly; the difference per item is
what the batcher itself costs (enqueue, wait, merge, split, wake-up). The same is
shown end to end through ``Client.predict`` over ``EchoTransport``, a
:class:`~tfs_async.transport.Transport` that answers without a server.

``--device-latency FIXED_MS,PER_ROW_MS`` starts the server with
``--emulate_device_latency`` (a serial device that runs each request for
FIXED_MS + PER_ROW_MS x rows): the shape of an accelerator server, where a
request's fixed cost dominates and batching pays most. Without it the server
is the emulator's plain Python, and both contenders are bound by CPU on the
same machine.

``--loop uvloop`` runs everything on uvloop's event loop instead of asyncio's
(both contenders alike; needs the optional ``uvloop`` package).

Results are printed and written to ``benchmarks/results/batching.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfs_async import Batching, Client
from tfs_async.batching import Batcher
from tfs_async.bench.loadgen import LoadResult, closed_loop
from tfs_async.bench.models import FLOAT_INPUT, FLOAT_OUTPUT, MODEL_NAME
from tfs_async.bench.stats import median
from tfs_async.errors import UnimplementedError
from tfs_async.testing.process import ModelServerProcess
from tfs_async.transport import Transport
from tfs_async.transport.base import CallOptions
from tfs_async.types import ModelSpec, PredictRequest, PredictResult

RESULTS = Path(__file__).resolve().parent / "results" / "batching.json"
EXAMPLES = str(Path(__file__).resolve().parent.parent / "examples")
ROW = np.random.default_rng(0).random((1, 10), dtype=np.float32)
CALLERS = 256
STREAM_ROWS = 100_000
Call = Callable[[], Awaitable[Any]]


class EchoTransport(Transport):
    """A transport answering Predict with its inputs as outputs: no server, no wire.

    It answers after one turn of the event loop, as a real transport would (a
    request is never answered before its caller yields).
    """

    protocol = "echo"

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        await asyncio.sleep(0)  # one turn of the event loop, as any socket read takes
        inputs = request.inputs
        return PredictResult({FLOAT_OUTPUT: np.asarray(inputs[FLOAT_INPUT])}, model=request.model)

    async def _unsupported(self, *args: Any) -> Any:
        raise UnimplementedError("the echo transport only answers Predict")

    classify = regress = multi_inference = _unsupported  # type: ignore[assignment]
    get_model_metadata = get_model_status = reload_config = _unsupported  # type: ignore[assignment]

    async def aclose(self) -> None:
        return None


def figures(runs: list[LoadResult]) -> dict[str, Any]:
    """Medians over repeats of one contender (every call carries one row)."""
    return {
        "rows_per_s": median([r.rps for r in runs]),
        "p50_ms": median([r.histogram.percentile_us(50) / 1000 for r in runs]),
        "p99_ms": median([r.histogram.percentile_us(99) / 1000 for r in runs]),
        "cpu_us_per_row": median([r.cpu_us_per_request for r in runs]),
        "errors": sum(r.error_count for r in runs),
        "first_error": next((r.first_error for r in runs if r.first_error), None),
    }


def checked(client: Client) -> Call:
    async def call() -> Any:
        result = await client.predict(MODEL_NAME, {FLOAT_INPUT: ROW})
        if result.output.shape != ROW.shape:  # a wrong split must not count
            raise AssertionError(f"got shape {result.output.shape}")
        return result

    return call


async def stream_rate(client: Client, rows: int) -> float:
    """Rows/s of ``predict_stream`` over ``rows`` one-row items, every answer checked."""
    items = ({FLOAT_INPUT: ROW} for _ in range(rows))
    seen = 0
    started = time.perf_counter()
    async for result in client.predict_stream(MODEL_NAME, items, max_in_flight=CALLERS):
        if result.output.shape != ROW.shape:
            raise AssertionError(f"got shape {result.output.shape}")
        seen += 1
    elapsed = time.perf_counter() - started
    assert seen == rows
    return rows / elapsed


async def protocol_figures(target: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every server figure for one protocol, contenders interleaved per repeat."""
    pool_size = 64 if target.startswith("http") else None
    batching = Batching(max_batch_size=args.max_batch_size, max_delay=args.max_delay)
    plain = Client(target, timeout=60, pool_size=pool_size)
    batched = plain.with_options(batching=batching)
    runs: dict[str, list[LoadResult]] = {
        k: [] for k in ("c256_plain", "c256_batched", "c1_plain", "c1_batched")
    }
    streams: list[float] = []
    # The batcher's counters over the c=256 runs alone (the c=1 runs send 1-row requests).
    c256_requests = c256_rows = 0
    c256_flushes: Counter[str] = Counter()
    async with plain:
        await plain.connect(timeout=30)
        for _ in range(args.repeats):
            for name, client, concurrency in (
                ("c256_plain", plain, CALLERS),
                ("c256_batched", batched, CALLERS),
                ("c1_plain", plain, 1),
                ("c1_batched", batched, 1),
            ):
                before = batched.batching_stats()
                runs[name].append(
                    await closed_loop(
                        checked(client),
                        concurrency=concurrency,
                        duration_s=args.duration,
                        warmup_s=args.warmup,
                    )
                )
                if name == "c256_batched":
                    after = batched.batching_stats()
                    c256_requests += after.batches - before.batches
                    c256_rows += after.rows - before.rows
                    c256_flushes.update(after.flushes)
                    c256_flushes.subtract(before.flushes)
            streams.append(await stream_rate(batched, args.stream_rows))
    med = {name: figures(rs) for name, rs in runs.items()}
    out: dict[str, Any] = dict(med)
    out["stream_rows_per_s"] = median(streams)
    out["c256_rows_ratio"] = med["c256_batched"]["rows_per_s"] / med["c256_plain"]["rows_per_s"]
    out["c256_p99_ratio"] = med["c256_batched"]["p99_ms"] / med["c256_plain"]["p99_ms"]
    out["c1_rows_ratio"] = med["c1_batched"]["rows_per_s"] / med["c1_plain"]["rows_per_s"]
    out["stream_vs_c256_batched"] = out["stream_rows_per_s"] / med["c256_batched"]["rows_per_s"]
    out["batching_stats_c256"] = {
        "requests": c256_requests,
        "mean_rows_per_request": round(c256_rows / max(c256_requests, 1), 1),
        "flushes": {k: v for k, v in c256_flushes.items() if v},
    }
    return out


async def echo_loop(call: Callable[[], Awaitable[Any]], items: int) -> float:
    """Seconds per item for ``CALLERS`` tasks running ``call`` back to back, ``items`` in all."""
    left = items

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CALLERS)))
    return (time.perf_counter() - started) / items


async def overhead_figures(args: argparse.Namespace) -> dict[str, Any]:
    """The batcher's own cost per item, and the client's end to end, without a server."""
    spec = ModelSpec(MODEL_NAME)
    config = Batching(max_batch_size=args.max_batch_size, max_delay=args.max_delay)
    inputs: Mapping[str, Any] = {FLOAT_INPUT: ROW}

    async def echo(merged: Mapping[str, Any], timeout: float | None) -> PredictResult:
        await asyncio.sleep(0)
        return PredictResult({FLOAT_OUTPUT: merged[FLOAT_INPUT]}, model=spec)

    batcher = Batcher()

    async def direct() -> Any:
        return await echo(inputs, 60.0)

    async def through_batcher() -> Any:
        return await batcher.submit("route", config, inputs, echo, 60.0, spec)

    plain = Client(EchoTransport(), timeout=60)
    batched = plain.with_options(batching=config)
    client_calls = {
        "client_plain": checked(plain),
        "client_batched": checked(batched),
    }
    samples: dict[str, list[float]] = {
        k: [] for k in ("direct", "batcher", "client_plain", "client_batched")
    }
    n = args.echo_items
    for _ in range(args.repeats):
        samples["direct"].append(await echo_loop(direct, n))
        samples["batcher"].append(await echo_loop(through_batcher, n))
        for name, call in client_calls.items():
            samples[name].append(await echo_loop(call, n))
    await batcher.aclose()
    stats = batched.batching_stats()
    await plain.close()
    us = {k: median(v) * 1e6 for k, v in samples.items()}
    return {
        "items_per_run": n,
        "direct_echo_us_per_item": us["direct"],
        "batcher_us_per_item": us["batcher"],
        "batcher_overhead_us_per_item": us["batcher"] - us["direct"],
        "client_plain_us_per_item": us["client_plain"],
        "client_batched_us_per_item": us["client_batched"],
        "client_mean_rows_per_request": round(stats.mean_batch_rows, 1),
    }


def rss_mib() -> float:
    """Resident memory of this process now (Linux), MiB."""
    with open(f"/proc/{os.getpid()}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def million_lines(target: str, lines: int) -> dict[str, Any]:
    """examples/stream_jsonl.py over ``lines`` generated JSON lines: rate and memory."""
    sys.path.insert(0, EXAMPLES)
    from stream_jsonl import run_pipeline  # type: ignore[import-not-found, unused-ignore]

    row = json.dumps({FLOAT_INPUT: ROW[0].tolist()})
    samples: list[tuple[int, float]] = []

    def source() -> Any:
        for i in range(lines):
            if i % 100_000 == 0:
                samples.append((i, rss_mib()))
            yield row + "\n"

    class Count:
        lines = 0

        def write(self, text: str) -> int:
            self.lines += text.count("\n")
            return len(text)

    sink = Count()
    async with Client(target, timeout=60, batching=Batching()) as client:
        started = time.perf_counter()
        failed = await run_pipeline(client, MODEL_NAME, source(), sink)
        elapsed = time.perf_counter() - started
    samples.append((lines, rss_mib()))
    assert sink.lines == lines, sink.lines
    assert failed == 0, failed
    return {
        "lines": lines,
        "rows_per_s": lines / elapsed,
        "rss_mib_by_line": samples,
        "rss_growth_after_first_100k_mib": samples[-1][1] - samples[min(1, len(samples) - 1)][1],
    }


def verdicts(report: dict[str, Any]) -> list[str]:
    """One line per target: the figure, the target, met or not."""
    lines = []
    for proto in ("grpc", "http"):
        r = report[proto]
        lines += [
            f"{proto}: c=256 rows/s batched/plain {r['c256_rows_ratio']:.1f}x (target >= 25x): "
            + ("met" if r["c256_rows_ratio"] >= 25 else "NOT met"),
            f"{proto}: c=256 p99 batched/plain {r['c256_p99_ratio']:.2f} (target <= 1): "
            + ("met" if r["c256_p99_ratio"] <= 1 else "NOT met"),
            f"{proto}: c=1 rows/s batched/plain {r['c1_rows_ratio']:.2f}x (target >= 0.9x): "
            + ("met" if r["c1_rows_ratio"] >= 0.9 else "NOT met"),
            f"{proto}: predict_stream / 256 batched callers {r['stream_vs_c256_batched']:.0%} "
            "(target >= 90%): " + ("met" if r["stream_vs_c256_batched"] >= 0.9 else "NOT met"),
        ]
    o = report["overhead"]["batcher_overhead_us_per_item"]
    lines.append(
        f"batcher overhead {o:.1f} us/item (target <= 10 us): " + ("met" if o <= 10 else "NOT met")
    )
    return lines


def print_protocol(proto: str, r: dict[str, Any]) -> None:
    for name in ("c256_plain", "c256_batched", "c1_plain", "c1_batched"):
        m = r[name]
        print(
            f"{proto:<5} {name:<13} {m['rows_per_s']:9.0f} rows/s  p50 {m['p50_ms']:8.2f} ms  "
            f"p99 {m['p99_ms']:8.2f} ms  cpu {m['cpu_us_per_row']:7.1f} us/row  "
            f"errors {m['errors']}",
            flush=True,
        )
    print(f"{proto:<5} stream        {r['stream_rows_per_s']:9.0f} rows/s", flush=True)
    print(f"{proto:<5} batcher at c=256: {r['batching_stats_c256']}", flush=True)


async def main(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "note": "client and the emulator in separate processes on the same machine",
        "callers": CALLERS,
        "tensor": "float32 (1, 10) per caller",
        "batching": {"max_batch_size": args.max_batch_size, "max_delay_s": args.max_delay},
        "duration_s": args.duration,
        "repeats": args.repeats,
        "stream_rows": args.stream_rows,
        "event_loop": args.loop,
        "device_latency_ms": args.device_latency,
    }
    extra = [f"--emulate_device_latency={args.device_latency}"] if args.device_latency else []
    async with ModelServerProcess(
        python_models=["tfs_async.bench.models:benchmark_models"],
        startup_timeout=60,
        extra_args=extra,
    ) as server:
        for proto, target in (("grpc", f"grpc://{server.grpc_target}"), ("http", server.rest_url)):
            report[proto] = await protocol_figures(target, args)
            print_protocol(proto, report[proto])
        if args.stream_lines:
            report["million_lines"] = await million_lines(
                f"grpc://{server.grpc_target}", args.stream_lines
            )
            print(f"stream_jsonl example (gRPC): {report['million_lines']}", flush=True)
    report["overhead"] = await overhead_figures(args)
    print(f"echo transport (no server): {report['overhead']}", flush=True)
    report["verdicts"] = verdicts(report)
    for line in report["verdicts"]:
        print(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=0.3, help="seconds before measuring")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per figure")
    parser.add_argument("--max-batch-size", type=int, default=64, help="Batching.max_batch_size")
    parser.add_argument("--max-delay", type=float, default=0.002, help="Batching.max_delay (s)")
    parser.add_argument("--stream-rows", type=int, default=STREAM_ROWS, help="predict_stream rows")
    parser.add_argument("--echo-items", type=int, default=200_000, help="items per echo run")
    parser.add_argument(
        "--stream-lines", type=int, default=0, help="also run the streaming example on N lines"
    )
    parser.add_argument(
        "--device-latency",
        default="",
        metavar="FIXED_MS,PER_ROW_MS",
        help="model an accelerator server (--emulate_device_latency), e.g. 1,0.01",
    )
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop to run on"
    )
    parsed = parser.parse_args()
    if parsed.loop == "uvloop":
        import uvloop

        sys.exit(uvloop.run(main(parsed)))
    sys.exit(asyncio.run(main(parsed)))
