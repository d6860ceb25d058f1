"""``tfs-async bench``: gRPC vs HTTP against the embedded emulator or a real TF Serving.

By default the emulator is started in its own process (so the client's CPU is
not shared with the server's event loop) serving :mod:`tfs_async.bench.models`;
``--grpc``/``--rest``/``--model`` point the same sweep at any TF Serving.
Results go to ``benchmarks/results/`` (``--out``): JSON, Markdown, PNG plots.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tfs_async.bench import _deps
from tfs_async.bench.plan import FULL, QUICK, SweepPlan
from tfs_async.bench.stability import Stability

__all__ = ["add_arguments", "build_contenders", "plan_from_args", "run", "stability_from_args"]

DEFAULT_OUT = Path("benchmarks") / "results"


def _csv(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(part.strip()) for part in text.split(",") if part.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"bad list {text!r}: {exc}") from exc

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``bench`` flags on ``parser``."""
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument(
        "--quick",
        action="store_true",
        help="short cells, tighter memory and time budgets (< 3 min; `make bench`)",
    )
    sweep.add_argument("--payloads", type=_csv(str), help="comma list (default: all)")
    sweep.add_argument("--concurrency", type=_csv(int), help="comma list (default: 1,16,64,256)")
    sweep.add_argument("--repeats", type=int, help="interleaved repeats of every cell")
    sweep.add_argument("--duration", type=float, help="measured seconds per closed-loop cell")
    sweep.add_argument("--warmup", type=float, help="warm-up seconds per cell (excluded)")
    sweep.add_argument(
        "--no-open-loop", action="store_true", help="skip the fixed-arrival-rate runs"
    )
    sweep.add_argument(
        "--open-loop-load",
        type=float,
        help="open-loop rate as a fraction of the slower SDK protocol's closed-loop best",
    )
    sweep.add_argument(
        "--open-loop-duration", type=float, help="measured seconds per open-loop cell"
    )
    sweep.add_argument(
        "--max-cell-seconds",
        type=float,
        help="skip a cell whose estimated time exceeds this (reported in the notes)",
    )
    sweep.add_argument(
        "--pool-size", type=int, help="the SDK client's pool_size (default: the SDK's own)"
    )
    sweep.add_argument(
        "--only", type=_csv(str), help="contender keys to run (e.g. tfs_async/grpc,floor/grpc)"
    )
    target = parser.add_argument_group("target (default: the emulator in its own process)")
    target.add_argument("--grpc", metavar="HOST:PORT", help="a TF Serving gRPC endpoint")
    target.add_argument("--rest", metavar="URL", help="a TF Serving REST base URL")
    target.add_argument("--model", help="model name (default: bench)")
    target.add_argument("--signature", help="signature of the float input (default: server's)")
    target.add_argument("--input-name", help="float input alias (default: x)")
    target.add_argument("--output-name", help="float output alias (default: y)")
    target.add_argument(
        "--bytes-signature",
        help="signature taking a string tensor (default: 'bytes' on the emulator, none on a "
        "real server: the bytes payload is then skipped)",
    )
    target.add_argument("--bytes-input", help="string input alias (default: s)")
    target.add_argument("--bytes-output", help="string output alias (default: s)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    output.add_argument("--stem", default="protocol", help="file name stem of the results")
    output.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    sweep.add_argument(
        "--no-uvloop",
        action="store_true",
        help="skip the uvloop pass (run when the optional uvloop package is installed)",
    )
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    output.add_argument(
        "-f",
        "--latency-report-file",
        type=Path,
        metavar="CSV",
        help="also write the closed-loop results as CSV in Triton perf_analyzer's -f layout",
    )
    stable = parser.add_argument_group("stability (perf_analyzer's rule, per closed-loop cell)")
    stable.add_argument(
        "-s",
        "--stability-percentage",
        type=float,
        metavar="X",
        help="measure each cell in windows until the last 3 vary by at most X%% "
        "(max/min of requests/s and of p99); off unless given",
    )
    stable.add_argument(
        "--max-trials",
        type=int,
        metavar="N",
        help="with --stability-percentage: give up after N windows (default 10)",
    )


def plan_from_args(args: argparse.Namespace) -> SweepPlan:
    """The sweep plan: ``--quick`` or the full one, with the flags' overrides."""
    base = QUICK if args.quick else FULL
    return base.with_overrides(
        payloads=args.payloads,
        concurrency=args.concurrency,
        repeats=args.repeats,
        duration_s=args.duration,
        warmup_s=args.warmup,
        open_loop=False if args.no_open_loop else None,
        open_loop_load=args.open_loop_load,
        open_loop_duration_s=args.open_loop_duration,
        max_cell_s=args.max_cell_seconds,
    )


def stability_from_args(args: argparse.Namespace) -> Stability | None:
    """perf_analyzer's stability rule from ``--stability-percentage`` / ``--max-trials``."""
    if args.stability_percentage is None:
        if args.max_trials is not None:
            raise ValueError("--max-trials needs --stability-percentage")
        return None
    if args.max_trials is None:
        return Stability(args.stability_percentage)
    return Stability(args.stability_percentage, args.max_trials)


def build_contenders(
    protocols: Sequence[str], only: Sequence[str] | None, *, pool_size: int | None = None
) -> tuple[list[Any], list[str]]:
    """The SDK client per protocol, the floors, the typical user and the optional peers."""
    from tfs_async.bench.baselines import (
        GrpcFloor,
        HttpFloor,
        TypicalHttpBaseline,
        optional_baselines,
    )
    from tfs_async.bench.contenders import ClientContender, Contender
    from tfs_async.bench.variants import http_transport_contenders

    contenders: list[Contender] = []
    if "grpc" in protocols:
        contenders += [ClientContender("grpc", pool_size=pool_size), GrpcFloor()]
    if "http" in protocols:
        contenders += [
            ClientContender("http", pool_size=pool_size),
            HttpFloor(),
            TypicalHttpBaseline(),
        ]
    extra, notes = optional_baselines()
    # The SDK over the HTTP transport that is not the default (tfs_async/http+lean or +aiohttp).
    other, other_notes = http_transport_contenders(pool_size)
    extra, notes = [*extra, *other], [*notes, *other_notes]
    contenders += [c for c in extra if c.protocol in protocols]
    if only:
        unknown = set(only) - {c.key for c in contenders}
        if unknown:
            raise ValueError(
                f"--only names unknown contenders {sorted(unknown)}; known: "
                f"{', '.join(c.key for c in contenders)}"
            )
        contenders = [c for c in contenders if c.key in only]
    return contenders, notes


async def _uvloop_pass(
    args: argparse.Namespace,
    plan: SweepPlan,
    endpoints: Any,
    protocols: list[str],
    result: Any,
) -> None:
    """The SDK client again under uvloop (its own loop, in a thread), merged into ``result``."""
    from tfs_async.bench.variants import merge_pass, uvloop_available, uvloop_pass

    sdk = [p for p in protocols if not args.only or f"tfs_async/{p}" in args.only]
    if args.no_uvloop or not sdk:
        return
    if not uvloop_available():
        result.notes.append(
            "uvloop contenders not run: install the optional extra "
            "(pip install 'tfs-async[uvloop]')"
        )
        return
    if not args.no_progress:
        print("uvloop pass: the SDK client over " + ", ".join(sdk), file=sys.stderr)
    extra = await asyncio.to_thread(uvloop_pass, endpoints, sdk, plan, pool_size=args.pool_size)
    merge_pass(result, extra, "uvloop pass")


def _check_deps(args: argparse.Namespace) -> str | None:
    needed = [("hdrh.histogram", "hdrhistogram")]
    if not args.no_plots:
        needed.append(("matplotlib", "matplotlib"))
    if not args.no_progress:
        needed.append(("tqdm", "tqdm"))
    for module, package in needed:
        try:
            _deps.require(module, package)
        except _deps.MissingDependencyError as exc:
            return str(exc)
    return None


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when it completed and every request succeeded, 1 on request errors."""
    problem = _check_deps(args)
    if problem:
        print(f"tfs-async bench: {problem}", file=sys.stderr)
        return 2
    try:
        plan = plan_from_args(args)
        stability_from_args(args)  # a usage error shows before the emulator starts
        return asyncio.run(_main(args, plan))
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"tfs-async bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


async def _main(args: argparse.Namespace, plan: SweepPlan) -> int:
    from tfs_async.bench.contenders import Endpoints
    from tfs_async.bench.payloads import TargetModel

    external = args.grpc is not None or args.rest is not None
    model = TargetModel(
        name=args.model or "bench",
        float_signature=args.signature,
        float_input=args.input_name or "x",
        float_output=args.output_name or "y",
        bytes_signature=args.bytes_signature if external else (args.bytes_signature or "bytes"),
        bytes_input=args.bytes_input or "s",
        bytes_output=args.bytes_output or "s",
    )
    if external:
        protocols = [p for p, v in (("grpc", args.grpc), ("http", args.rest)) if v]
        endpoints = Endpoints(args.grpc or "", args.rest or "", model)
        where = f"TF Serving at {', '.join(v for v in (args.grpc, args.rest) if v)}"
        return await _bench(args, plan, endpoints, protocols, where)
    from tfs_async.testing.process import ModelServerProcess

    async with ModelServerProcess(python_models=["tfs_async.bench.models:benchmark_models"]) as srv:
        endpoints = Endpoints(srv.grpc_target, srv.rest_url, model)
        where = f"the tfs_async emulator in its own process (pid {srv.pid}), same machine"
        return await _bench(args, plan, endpoints, ["grpc", "http"], where)


async def _bench(
    args: argparse.Namespace,
    plan: SweepPlan,
    endpoints: Any,
    protocols: list[str],
    where: str,
) -> int:
    from tfs_async.bench.aggregate import aggregate
    from tfs_async.bench.report import verdicts, write_report
    from tfs_async.bench.runner import run_sweep

    contenders, notes = build_contenders(protocols, args.only, pool_size=args.pool_size)
    stability = stability_from_args(args)
    bar: Any = None

    def progress(total: int) -> Callable[[str], None]:
        nonlocal bar
        if args.no_progress:
            return lambda _label: None
        tqdm = _deps.require("tqdm", "tqdm")
        bar = tqdm.tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True)

        def step(label: str) -> None:
            bar.set_postfix_str(label, refresh=False)
            bar.update(1)

        return step

    try:
        result = await run_sweep(
            endpoints,
            contenders,
            plan,
            notes=notes,
            target_description=where,
            progress=progress,
            stability=stability,
        )
    finally:
        if bar is not None:
            bar.close()
    await _uvloop_pass(args, plan, endpoints, protocols, result)
    files = write_report(result, args.out, plots=not args.no_plots, stem=args.stem)
    aggs = aggregate(result.cells)
    for v in verdicts(result, aggs):
        winner = v.latency_winner or "?"
        ratio = f"{v.latency_ratio:.2f}x" if v.latency_ratio else "-"
        tp = v.throughput_winner or "?"
        tp_ratio = f"{v.throughput_ratio:.2f}x" if v.throughput_ratio else "-"
        about = " (estimated: " + ", ".join(v.estimated) + " not sent)" if v.estimated else ""
        print(f"{v.payload:>20}: latency {winner} by {ratio}; throughput {tp} by {tp_ratio}{about}")
    errors = sum(a.error_count + a.warmup_errors for a in aggs.values())
    print(f"results: {files.markdown} {files.json} ({len(files.plots)} plots)")
    if args.latency_report_file is not None:
        from tfs_async.bench.perf_csv import write_perf_csv

        print(f"perf_analyzer CSV: {write_perf_csv(result.cells, args.latency_report_file)}")
    if errors:
        print(f"{errors} requests failed: see the Errors section of {files.markdown}")
    for note in result.notes:
        print(f"note: {note}")
    return 1 if errors else 0
