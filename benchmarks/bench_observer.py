"""What observing costs the client: CPU per ``Client.predict`` without and with observers.

Run: ``.venv/bin/python benchmarks/bench_observer.py [--calls 20000] [--repeats 7]``.

The network is left out so that microseconds show: the client sends through an
in-process transport answering every Predict at once (the client's own work
remains: options, deadline, retry loop, the observer hooks). Each figure is the
median over interleaved repeats of CPU microseconds per call
(``time.process_time``); ratios are against "no observer" measured in the same run:

* no observer (the path every existing user runs);
* a do-nothing ``Observer()`` (the hooks' own cost);
* ``OpenTelemetryObserver()`` on the API's default no-op providers (the cost
  of the ``[otel]`` extra when no SDK is configured).

Comparing "no observer" across two versions of the code: run this script with
each, alternately, and compare the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np

from tfs_async.client import Client
from tfs_async.observe import Observer
from tfs_async.transport.base import CallOptions, Transport
from tfs_async.types import (
    ClassifyRequest,
    ClassifyResult,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    MultiInferenceRequest,
    MultiInferenceResult,
    PredictRequest,
    PredictResult,
    RegressRequest,
    RegressResult,
)

X = {"x": np.zeros((1, 10), np.float32)}


class EchoTransport(Transport):
    """Answers Predict at once with its inputs; nothing else is used here."""

    protocol = "echo"
    target = "127.0.0.1:8500"

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        return PredictResult(dict(request.inputs), model=request.model)

    async def classify(self, request: ClassifyRequest, options: CallOptions) -> ClassifyResult:
        raise NotImplementedError

    async def regress(self, request: RegressRequest, options: CallOptions) -> RegressResult:
        raise NotImplementedError

    async def multi_inference(
        self, request: MultiInferenceRequest, options: CallOptions
    ) -> MultiInferenceResult:
        raise NotImplementedError

    async def get_model_metadata(self, model: ModelSpec, options: CallOptions) -> ModelMetadata:
        raise NotImplementedError

    async def get_model_status(
        self, model: ModelSpec, options: CallOptions
    ) -> list[ModelVersionStatus]:
        raise NotImplementedError

    async def reload_config(self, config: object, options: CallOptions) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


async def cpu_us_per_call(client: Client, calls: int) -> float:
    for _ in range(200):  # warm-up
        await client.predict("m", X)
    cpu0 = time.process_time()
    for _ in range(calls):
        await client.predict("m", X)
    return (time.process_time() - cpu0) / calls * 1e6


def observers() -> dict[str, Observer | None]:
    chosen: dict[str, Observer | None] = {"no observer": None, "Observer()": Observer()}
    try:
        from tfs_async.otel import OpenTelemetryObserver
    except ImportError:
        return chosen
    chosen["OpenTelemetryObserver (no SDK)"] = OpenTelemetryObserver()
    return chosen


async def main(args: argparse.Namespace) -> None:
    kinds = observers()
    clients = {name: Client(EchoTransport(), observer=obs) for name, obs in kinds.items()}
    figures: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.repeats):
        for name, client in clients.items():
            figures[name].append(await cpu_us_per_call(client, args.calls))
    base = statistics.median(figures["no observer"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(
            f"{name:32} {median:7.2f} us/call  x{median / base:5.3f}  "
            f"(min {min(values):.2f}, max {max(values):.2f}, {args.repeats} repeats)"
        )
    for client in clients.values():
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000, help="calls per measurement")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats")
    asyncio.run(main(parser.parse_args()))
