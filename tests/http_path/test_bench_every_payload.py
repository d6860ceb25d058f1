"""The benchmark answers its own question: both protocols measured, and judged, on every payload.

A payload whose cell would not fit the plan still gets one request per SDK protocol
(the probe, at concurrency 1), so the verdict names a winner for it; uvloop
contenders join the result as their own lines.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.client import within
from tfs_async.bench.aggregate import aggregate
from tfs_async.bench.cli import build_contenders
from tfs_async.bench.contenders import ClientContender, Contender, Endpoints
from tfs_async.bench.models import benchmark_models
from tfs_async.bench.payloads import TargetModel
from tfs_async.bench.plan import SweepPlan
from tfs_async.bench.report import verdicts
from tfs_async.bench.runner import run_sweep
from tfs_async.bench.variants import (
    http_transport_contenders,
    merge_pass,
    uvloop_available,
    uvloop_pass,
)
from tfs_async.testing import ModelServer
from tfs_async.transport.target import DEFAULT_HTTP_TRANSPORT, HTTP_TRANSPORTS

TIMEOUT = 60
PAYLOADS = ("f32[1x10]", "f32[32x128]")


async def test_a_payload_too_slow_for_a_cell_still_gets_a_verdict() -> None:
    # max_cell_s so small that no cell fits: every SDK figure is the probe's request.
    plan = SweepPlan(
        payloads=PAYLOADS,
        concurrency=(1, 4),
        repeats=1,
        warmup_s=0.0,
        duration_s=0.02,
        open_loop=False,
        codec_budget_s=0.005,
        max_cell_s=1e-6,
        max_one_request_s=TIMEOUT,
    )
    contenders: list[Contender] = [ClientContender("grpc"), ClientContender("http")]
    async with within(TIMEOUT), ModelServer(benchmark_models()) as server:
        endpoints = Endpoints(server.grpc_target, server.rest_url, TargetModel())
        result = await run_sweep(endpoints, contenders, plan, target_description="test")
    cells = {(c.contender, c.payload, c.concurrency) for c in result.cells if c.role == "sdk"}
    for payload in PAYLOADS:
        for key in ("tfs_async/grpc", "tfs_async/http"):
            assert (key, payload, 1) in cells
            assert (key, payload, 4) not in cells
    assert all(c.result.ok == 1 for c in result.cells if c.role == "sdk")
    judged = {v.payload: v for v in verdicts(result, aggregate(result.cells))}
    for payload in PAYLOADS:
        assert judged[payload].latency_winner in ("grpc", "http"), judged[payload]
    assert any("one request at concurrency 1" in note for note in result.notes)


@pytest.mark.skipif(not uvloop_available(), reason="the optional uvloop package is not installed")
async def test_uvloop_contenders_join_the_result_as_their_own_lines() -> None:
    plan = SweepPlan(
        payloads=("f32[1x10]",),
        concurrency=(1,),
        repeats=1,
        warmup_s=0.0,
        duration_s=0.02,
        open_loop=False,
        codec_budget_s=0.005,
    )
    async with within(TIMEOUT), ModelServer(benchmark_models()) as server:
        endpoints = Endpoints(server.grpc_target, server.rest_url, TargetModel())
        result = await run_sweep(
            endpoints, [ClientContender("grpc")], plan, target_description="test"
        )
        extra = await asyncio.to_thread(uvloop_pass, endpoints, ["grpc", "http"], plan)
    merge_pass(result, extra, "uvloop pass")
    keys = [c["key"] for c in result.contenders]
    assert keys.count("harness/noop") == 1
    assert {"tfs_async/grpc+uvloop", "tfs_async/http+uvloop"} <= set(keys)
    uv = [c for c in result.cells if c.contender.endswith("+uvloop")]
    assert {c.contender for c in uv} == {"tfs_async/grpc+uvloop", "tfs_async/http+uvloop"}
    assert all(c.result.ok >= 1 and c.result.error_count == 0 for c in uv)


def test_the_sweep_has_a_line_for_the_other_http_transport() -> None:
    contenders, notes = build_contenders(["grpc", "http"], None)
    keys = [c.key for c in contenders]
    other = next(k for k in HTTP_TRANSPORTS if k != DEFAULT_HTTP_TRANSPORT)
    assert {"tfs_async/grpc", "tfs_async/http", f"tfs_async/http+{other}"} <= set(keys)
    assert notes == [] or all("not benchmarked" not in n for n in notes)


async def test_only_the_judged_lines_get_one_request_where_no_cell_fits() -> None:
    """The client as users get it is measured on every payload; its variants only where
    their cells fit (they are extra lines, not what the verdict judges)."""
    plan = SweepPlan(
        payloads=("f32[1x10]",),
        concurrency=(1,),
        repeats=1,
        warmup_s=0.0,
        duration_s=0.02,
        open_loop=False,
        codec_budget_s=0.005,
        max_cell_s=1e-6,
        max_one_request_s=TIMEOUT,
    )
    other, _ = http_transport_contenders()
    contenders: list[Contender] = [ClientContender("http"), *other]
    async with within(TIMEOUT), ModelServer(benchmark_models()) as server:
        endpoints = Endpoints(server.grpc_target, server.rest_url, TargetModel())
        result = await run_sweep(endpoints, contenders, plan, target_description="test")
    measured = {c.contender for c in result.cells if c.role == "sdk"}
    assert measured == {"tfs_async/http"}
    variant = other[0].key
    assert any(note.startswith(f"{variant} on f32[1x10]") for note in result.notes)
