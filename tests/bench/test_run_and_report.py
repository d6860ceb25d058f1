"""Tiny sweeps against a real in-process emulator: cells, order, errors, report files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tfs_async.bench.aggregate import aggregate
from tfs_async.bench.baselines import GrpcFloor, HttpFloor, TypicalHttpBaseline
from tfs_async.bench.contenders import ClientContender, Contender, Endpoints
from tfs_async.bench.models import benchmark_models
from tfs_async.bench.payloads import TargetModel
from tfs_async.bench.plan import SweepPlan
from tfs_async.bench.report import render_markdown, write_report
from tfs_async.bench.results import BenchResult
from tfs_async.bench.runner import run_sweep
from tfs_async.bench.stats import LatencyHistogram
from tfs_async.testing import ModelServer
from tfs_async.types import PredictResult

TIMEOUT = 60
PAYLOADS = ("f32[1x10]", "bytes[32]x100")
TINY = SweepPlan(
    payloads=PAYLOADS,
    concurrency=(1, 2),
    repeats=2,
    warmup_s=0.0,
    duration_s=0.03,
    open_loop_duration_s=0.03,
    codec_budget_s=0.005,
)


def _contenders() -> list[Contender]:
    return [
        ClientContender("grpc"),
        GrpcFloor(),
        ClientContender("http"),
        HttpFloor(),
        TypicalHttpBaseline(),
    ]


async def _run(endpoints: Endpoints, plan: SweepPlan = TINY) -> BenchResult:
    async with asyncio.timeout(TIMEOUT):
        return await run_sweep(endpoints, _contenders(), plan, target_description="test")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tiny_result() -> BenchResult:
    """One tiny sweep shared by the tests that only read its figures."""
    async with ModelServer(benchmark_models()) as server:
        return await _run(Endpoints(server.grpc_target, server.rest_url, TargetModel()))


def test_every_cell_ran_on_both_protocols_without_errors(tiny_result: BenchResult) -> None:
    keys = {c["key"] for c in tiny_result.contenders}
    assert {"tfs_async/grpc", "tfs_async/http", "floor/grpc", "floor/http"} <= keys
    closed = {
        (c.contender, c.payload, c.concurrency, c.repeat)
        for c in tiny_result.cells
        if c.mode == "closed"
    }
    for key in keys:
        for payload in PAYLOADS:
            for level in (1, 2):
                for repeat in (0, 1):
                    assert (key, payload, level, repeat) in closed
    for cell in tiny_result.cells:
        r = cell.result
        assert r.error_count == 0, (cell.contender, cell.payload, r.first_error)
        assert r.ok >= 1
        assert r.histogram.count == r.ok
    opened = {c.contender for c in tiny_result.cells if c.mode == "open"}
    assert opened == keys - {"harness/noop"}


def test_repeats_are_interleaved_and_protocols_alternate(tiny_result: BenchResult) -> None:
    order = [(c.repeat, c.contender) for c in tiny_result.cells if c.mode == "closed"]
    repeats = [r for r, _ in order]
    assert repeats == sorted(repeats)  # all of repeat 0, then all of repeat 1 ...
    first_cell = [k for r, k in order if r == 0][:5]
    assert [k.split("/")[0] for k in first_cell[:2]] == ["tfs_async", "tfs_async"]
    assert first_cell[:4] == ["tfs_async/grpc", "tfs_async/http", "floor/grpc", "floor/http"]
    second = [k for r, k in order if r == 1][:5]
    assert second[0] != first_cell[0]  # the order flips, so neither protocol always goes first


def test_codec_split_and_wire_sizes_are_measured(tiny_result: BenchResult) -> None:
    for payload in PAYLOADS:
        timings = tiny_result.codec[payload]
        for key in ("tfs_async/grpc", "tfs_async/http", "typical/http"):
            assert timings[key].encode_us is not None, (payload, key, timings[key].note)
            assert timings[key].decode_us is not None, (payload, key, timings[key].note)
        wire = tiny_result.wire[payload]
        grpc_req = wire["floor/grpc"]["request_body"]
        grpc_resp = wire["floor/grpc"]["response_body"]
        assert grpc_req is not None
        assert grpc_resp is not None
        # identity model: the answer carries the same tensor back
        assert grpc_resp >= grpc_req * 0.8
        assert wire["floor/http"]["request_headers"]
        assert wire["floor/http"]["response_headers"]
    f32 = tiny_result.wire["f32[1x10]"]["floor/grpc"]["request_body"]
    assert f32 is not None
    assert f32 >= 40


def test_report_files_exist_and_parse(tiny_result: BenchResult, tmp_path: Path) -> None:
    files = write_report(tiny_result, tmp_path / "out")
    data = json.loads(files.json.read_text())
    assert len(data["cells"]) == len(tiny_result.cells)
    for raw in data["cells"]:
        hist = LatencyHistogram.decode(raw["hdr_histogram_ns"])
        assert hist.count == raw["ok"] + sum(raw["errors"].values())
        assert raw["latency_us"]["p50_us"] <= raw["latency_us"]["p99_us"]
    assert {v["payload"] for v in data["verdicts"]} == set(PAYLOADS)
    assert data["meta"]["machine"]["cpu_count"] >= 1

    md = files.markdown.read_text()
    for payload in PAYLOADS:
        assert f"**{payload}**" in md
    assert md.count("on latency (p50 at concurrency 1") == len(PAYLOADS)
    assert "Harness overhead" in md
    assert "All requests succeeded" in md
    assert "typical/grpc-stub" not in md or "skipped" in md

    import matplotlib.image

    assert files.plots
    for png in files.plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.image.imread(png).ndim == 3
        assert png.name in md


def test_verdict_names_the_winner_from_the_figures(tiny_result: BenchResult) -> None:
    from tfs_async.bench.report import verdicts

    aggs = aggregate(tiny_result.cells)
    for v in verdicts(tiny_result, aggs):
        assert v.latency_winner in ("grpc", "http")
        assert v.p50_us[v.latency_winner] == min(v.p50_us.values())
        assert v.latency_ratio == pytest.approx(max(v.p50_us.values()) / min(v.p50_us.values()))
        assert v.throughput_winner == max(v.best_rps, key=lambda k: v.best_rps[k])
        assert "us" in v.reason


_SERVER_SIDE = ("aiohttp/web_protocol.py", "aio/server.pyx.pxi")


def _where(task: asyncio.Task[object]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_filename if code is not None else repr(task.get_coro())


async def test_failing_requests_are_counted_and_reported(
    bench_server: object, endpoints: Endpoints
) -> None:
    missing = Endpoints(endpoints.grpc_target, endpoints.rest_url, TargetModel(name="no_such"))
    plan = SweepPlan(
        payloads=("f32[1x10]",),
        concurrency=(1,),
        repeats=1,
        warmup_s=0.0,
        duration_s=0.02,
        open_loop=False,
        codec_budget_s=0.005,
    )
    before = asyncio.all_tasks()
    result = await _run(missing, plan)
    failed = [c for c in result.cells if c.role != "harness"]
    assert {c.contender for c in failed} == {c.key for c in _contenders()}
    for cell in failed:
        assert cell.result.ok == 0
        assert cell.result.error_count >= 1
        assert cell.result.warmup_errors == 1
    sdk = next(c for c in failed if c.contender == "tfs_async/grpc")
    assert "NotFound" in next(iter(sdk.result.errors))
    md = render_markdown(result)
    assert "## Errors (counted, never dropped)" in md
    assert "no_such" in md
    # every contender closed its connections: only the in-process server's own tasks remain
    left = [_where(t) for t in asyncio.all_tasks() - before]
    assert all(w.endswith(_SERVER_SIDE) for w in left), left


async def test_arrays_come_back_unchanged_through_the_identity_model(endpoints: Endpoints) -> None:
    from tfs_async.bench.payloads import make_payload

    client = ClientContender("http")
    async with asyncio.timeout(TIMEOUT):
        await client.open(endpoints, max_concurrency=1)
        try:
            for name in PAYLOADS:
                payload = make_payload(name, endpoints.model)
                assert payload is not None
                ready = await client.prepare(payload)
                out = await ready.call()
                assert isinstance(out, PredictResult)
                np.testing.assert_array_equal(out.output, payload.array)
        finally:
            await client.close()
