"""Rows per second through Beam's DirectRunner and Ray Data, next to plain asyncio.

Run: ``.venv-engines/bin/python benchmarks/bench_pipelines.py [--rows 20000] [--repeats 3]``
(the engines' environment: ``make .venv-engines/.installed``).

One emulator in its own process (``ModelServerProcess``) serves the examples'
``half_plus_two`` (``examples/pipeline_models.py``: float32 rows of 3 values). Each
contender sends the same rows in requests of ``--batch-size`` rows over one
protocol and waits for every answer:

* asyncio: ``--concurrency`` tasks on one loop, each a loop of ``Client.predict``
  over its share of the requests (what ``predict_stream`` would do);
* sync: one thread calling ``SyncClient.predict`` request after request;
* beam: ``Create(rows) | RunInference(TFServingModelHandler)`` on the
  DirectRunner, ``min_batch_size = max_batch_size = --batch-size``, counted;
* ray: ``from_numpy(rows).map_batches(TFServingPredictor, batch_size=--batch-size,
  concurrency=2)``, materialized (Ray is started before timing);
* beam-floor / ray-floor: the same pipelines with a model answered locally (no
  server, no tfs_async): what the engine costs by itself.

Repeats interleave the contenders (asyncio, sync, beam, ray, asyncio, ...);
each contender runs ``--rows`` and half as many, so that a run's fixed cost
(pipeline or dataset setup, Ray's actors starting) and its marginal rate (rows/s
beyond that) are told apart. Medians are reported, with the end-to-end rows/s
ratio to asyncio measured in the same run and the per-row overhead the engine
adds (1/marginal rate - 1/asyncio's marginal rate, in microseconds). Results are
printed and written to ``benchmarks/results/pipelines.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async import Client, SyncClient
from tfs_async.testing import ModelServerProcess

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pipelines.json"
MODEL = "half_plus_two"


def make_rows(n: int) -> npt.NDArray[np.float32]:
    i = np.arange(n, dtype=np.float32)
    rows: npt.NDArray[np.float32] = np.stack([i, i + 0.25, -i], axis=1)
    return rows


def run_asyncio(target: str, rows: npt.NDArray[np.float32], args: argparse.Namespace) -> int:
    chunks = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]

    async def main() -> int:
        async with Client(target, timeout=60) as client:

            async def worker(mine: list[npt.NDArray[np.float32]]) -> int:
                done = 0
                for chunk in mine:
                    done += len((await client.predict(MODEL, {"x": chunk})).output)
                return done

            shares = [chunks[k :: args.concurrency] for k in range(args.concurrency)]
            return sum(await asyncio.gather(*(worker(s) for s in shares)))

    return asyncio.run(main())


def run_sync(target: str, rows: npt.NDArray[np.float32], args: argparse.Namespace) -> int:
    done = 0
    with SyncClient(target, timeout=60) as client:
        for i in range(0, len(rows), args.batch_size):
            done += len(client.predict(MODEL, {"x": rows[i : i + args.batch_size]}).output)
    return done


def run_beam(target: str, rows: npt.NDArray[np.float32], args: argparse.Namespace) -> int:
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.ml.inference.base import RunInference

    from tfs_async.beam import TFServingModelHandler

    handler = TFServingModelHandler(
        target,
        MODEL,
        output="total",
        min_batch_size=args.batch_size,
        max_batch_size=args.batch_size,
        timeout=60,
    )
    answered = Metrics.counter("bench_pipelines", "rows")

    def count(result: Any) -> None:
        answered.inc()

    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create(list(rows)) | RunInference(handler) | beam.Map(count)
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name("rows"))["counters"]
    return int(counters[0].committed)


def run_beam_floor(target: str, rows: npt.NDArray[np.float32], args: argparse.Namespace) -> int:
    """The same Beam pipeline with a handler that answers locally: Beam's own cost."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

    class Local(ModelHandler):  # type: ignore[misc]
        def load_model(self) -> None:
            return None

        def run_inference(self, batch: Any, model: Any, inference_args: Any = None) -> Any:
            total = (np.stack(batch) * 0.5 + 2).sum(axis=1)
            return [PredictionResult(e, t, MODEL) for e, t in zip(batch, total, strict=True)]

        def batch_elements_kwargs(self) -> dict[str, int]:
            return {"min_batch_size": args.batch_size, "max_batch_size": args.batch_size}

    answered = Metrics.counter("bench_pipelines", "rows")

    def count(result: Any) -> None:
        answered.inc()

    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create(list(rows)) | RunInference(Local()) | beam.Map(count)
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name("rows"))["counters"]
    return int(counters[0].committed)


class _LocalPredictor:
    """A map_batches class answering locally: Ray Data's own cost."""

    async def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "total": (batch["x"] * 0.5 + 2).sum(axis=1)}


def run_ray_floor(target: str, rows: npt.NDArray[np.float32], args: argparse.Namespace) -> int:
    import ray

    dataset = ray.data.from_numpy(rows).rename_columns({"data": "x"})
    out = dataset.map_batches(
        _LocalPredictor, batch_size=args.batch_size, concurrency=2, num_cpus=0.5
    ).materialize()
    return int(out.count())


def run_ray(target: str, rows: npt.NDArray[np.float32], args: argparse.Namespace) -> int:
    import ray

    from tfs_async.ray import TFServingPredictor

    dataset = ray.data.from_numpy(rows).rename_columns({"data": "x"})
    out = dataset.map_batches(
        TFServingPredictor,
        fn_constructor_kwargs={"target": target, "model": MODEL, "timeout": 60},
        batch_size=args.batch_size,
        concurrency=2,
        num_cpus=0.5,
    ).materialize()
    return int(out.count())


CONTENDERS: dict[str, Callable[[str, npt.NDArray[np.float32], argparse.Namespace], int]] = {
    "asyncio": run_asyncio,
    "sync": run_sync,
    "beam": run_beam,
    "beam-floor": run_beam_floor,
    "ray": run_ray,
    "ray-floor": run_ray_floor,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=4, help="asyncio tasks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--protocols", default="grpc,http")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    args = parser.parse_args()
    contenders = args.contenders.split(",")
    rows = make_rows(args.rows)
    if any(name.startswith("ray") for name in contenders):
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    examples = str(ROOT / "examples")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [examples, os.environ.get("PYTHONPATH")])),
    )
    report: dict[str, Any] = {"rows": args.rows, "batch_size": args.batch_size, "results": {}}
    with ModelServerProcess(python_models=["pipeline_models:build"], env=env) as server:
        targets = {"grpc": f"grpc://{server.grpc_target}", "http": server.rest_url}
        for protocol in args.protocols.split(","):
            target = targets[protocol]
            for name in contenders:  # warm-up: imports, connections, Ray's actors' code
                CONTENDERS[name](target, rows[: args.batch_size * 4], args)
            half = rows[: args.rows // 2]
            seconds: dict[str, list[float]] = {name: [] for name in contenders}
            halves: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(args.repeats):
                for name in contenders:
                    for data, into in ((rows, seconds), (half, halves)):
                        started = time.perf_counter()
                        done = CONTENDERS[name](target, data, args)
                        into[name].append(time.perf_counter() - started)
                        if done != len(data):
                            sys.exit(
                                f"{name} over {protocol}: {done} rows answered, not {len(data)}"
                            )
            results: dict[str, dict[str, Any]] = {}
            for name in contenders:
                whole, part = statistics.median(seconds[name]), statistics.median(halves[name])
                # Two sizes separate what a run costs whatever its size (pipeline or
                # dataset setup, actors starting) from what each further row costs.
                marginal = (len(rows) - len(half)) / max(whole - part, 1e-9)
                results[name] = {
                    "rows_per_s": round(len(rows) / whole),
                    "marginal_rows_per_s": round(marginal),
                    "fixed_s": round(max(whole - len(rows) / marginal, 0.0), 3),
                    "seconds": [round(x, 3) for x in seconds[name]],
                    "seconds_half": [round(x, 3) for x in halves[name]],
                }
            base = results.get("asyncio")
            for name, figures in results.items():
                if base is not None:
                    figures["vs_asyncio"] = round(figures["rows_per_s"] / base["rows_per_s"], 4)
                    figures["overhead_us_per_row"] = round(
                        (1 / figures["marginal_rows_per_s"] - 1 / base["marginal_rows_per_s"])
                        * 1e6,
                        1,
                    )
                print(f"{protocol:5} {name:8} {figures}")
            report["results"][protocol] = results
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
