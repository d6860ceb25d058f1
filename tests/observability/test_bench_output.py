"""``tfs-async bench -f`` (perf_analyzer's CSV layout) and its stability mode."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfs_async.bench.loadgen import LoadResult
from tfs_async.bench.models import benchmark_models
from tfs_async.bench.perf_csv import EXTRA_COLUMNS, PERF_ANALYZER_COLUMNS, write_perf_csv
from tfs_async.bench.results import Cell
from tfs_async.bench.stability import Stability, is_stable, measure_cell, measure_until_stable
from tfs_async.bench.stats import LatencyHistogram
from tfs_async.testing import ModelServer

# perf_analyzer's header against a TF Serving backend (no server statistics).
HEADER = (
    "Concurrency,Inferences/Second,Client Send,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency"
)


def _load(ok: int, wall_s: float, latency_us: int, errors: int = 0) -> LoadResult:
    """A window of ``ok`` requests taking ``latency_us`` each (and ``errors`` failures)."""
    histogram = LatencyHistogram()
    for _ in range(ok + errors):
        histogram.record_ns(latency_us * 1000)
    result = LoadResult(histogram, ok=ok, wall_s=wall_s)
    if errors:
        result.errors["UnavailableError"] = errors
    return result


def _cell(contender: str, concurrency: int, load: LoadResult, mode: str = "closed") -> Cell:
    return Cell(contender, "grpc", "sdk", "f32[1x10]", mode, concurrency, 0, load)


def test_the_csv_has_perf_analyzers_columns_and_order(tmp_path: Path) -> None:
    cells = [
        _cell("tfs_async/grpc", 4, _load(400, 1.0, 8000)),
        _cell("tfs_async/grpc", 1, _load(100, 1.0, 1000)),
        _cell("tfs_async/grpc", 1, _load(300, 1.0, 3000, errors=2)),  # a repeat: pooled
        _cell("tfs_async/grpc", 16, _load(50, 1.0, 90000, errors=5), mode="open"),
    ]
    path = write_perf_csv(cells, tmp_path / "pa.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == f"{HEADER},{','.join(EXTRA_COLUMNS)}"
    assert ",".join(PERF_ANALYZER_COLUMNS) == HEADER
    table = list(csv.DictReader(lines))
    # one row per level, increasing Inferences/Second; the open-loop cell left out
    assert [r["Concurrency"] for r in table] == ["1", "4"]
    first, second = table
    assert float(first["Inferences/Second"]) == pytest.approx(200.0)  # 400 ok over 2 s
    assert float(second["Inferences/Second"]) == pytest.approx(400.0)
    assert (first["Requests"], first["Errors"]) == ("402", "2")
    assert first["Client Send"] == first["Client Recv"] == "0"
    assert abs(int(first["p50 latency"]) - 3000) <= 3  # microseconds, repeats merged
    assert abs(int(first["p99 latency"]) - 3000) <= 3
    assert abs(int(second["p99 latency"]) - 8000) <= 8
    assert first["Contender"] == "tfs_async/grpc"
    assert first["Payload"] == "f32[1x10]"


@given(
    base=st.floats(min_value=1.0, max_value=1e6),
    spread=st.floats(min_value=0.0, max_value=0.5),
    percentage=st.floats(min_value=1.0, max_value=100.0),
)
def test_stable_exactly_when_max_over_min_is_within_the_percentage(
    base: float, spread: float, percentage: float
) -> None:
    high = base * (1 + spread)
    windows = [(base, 1000.0), (high, 1000.0), (base, 1000.0)]
    assert is_stable(windows, percentage) == (high / base <= 1 + percentage / 100)
    # latency counts as much as throughput
    swapped = [(rps_p99[1], rps_p99[0]) for rps_p99 in windows]
    assert is_stable(swapped, percentage) == is_stable(windows, percentage)
    # only the last 3 windows count
    assert is_stable([(base * 1000, 1.0), *windows], percentage) == is_stable(windows, percentage)


async def test_windows_run_until_the_last_three_agree() -> None:
    figures = iter([(100, 1000), (300, 1000), (101, 1000), (102, 1010), (99, 1000), (500, 1)])
    ran: list[int] = []

    async def window() -> LoadResult:
        ok, latency = next(figures)
        ran.append(ok)
        return _load(ok, 1.0, latency)

    outcome = await measure_until_stable(window, Stability(10.0, max_trials=10))
    assert outcome.stable
    assert outcome.trials == 5
    assert ran == [100, 300, 101, 102, 99]
    assert outcome.result.ok == 101 + 102 + 99  # the last 3 windows, merged
    assert outcome.result.wall_s == pytest.approx(3.0)


async def test_an_unstable_cell_stops_at_max_trials_and_says_so() -> None:
    trials: list[int] = []

    async def window(trial: int) -> LoadResult:
        trials.append(trial)
        return _load(100 * (trial + 1), 1.0, 1000)  # throughput keeps climbing

    notes: list[str] = []
    result = await measure_cell(window, Stability(5.0, max_trials=4), notes, "cell A")
    assert trials == [0, 1, 2, 3]
    assert result.ok == 200 + 300 + 400
    (note,) = notes
    assert note.startswith("cell A: not stable within 5 % after 4 windows")
    # without stability mode: one window, nothing noted
    assert (await measure_cell(window, None, notes, "cell B")).ok == 100
    assert len(notes) == 1


def test_max_trials_below_three_windows_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        Stability(10.0, max_trials=2)


async def test_bench_writes_the_csv_with_stability_on(tmp_path: Path) -> None:
    async with ModelServer(benchmark_models()) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tfs_async.cli", "bench",
            "--grpc", server.grpc_target, "--model", "bench",
            "--payloads", "f32[1x10]", "--concurrency", "1,2", "--repeats", "1",
            "--duration", "0.05", "--warmup", "0", "--no-open-loop", "--no-plots",
            "--no-progress", "--only", "tfs_async/grpc",
            "--stability-percentage", "100000", "--max-trials", "3",
            "-f", str(tmp_path / "pa.csv"), "--out", str(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(90):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert f"perf_analyzer CSV: {tmp_path / 'pa.csv'}" in out.decode()
    table = list(csv.DictReader((tmp_path / "pa.csv").read_text().splitlines()))
    sdk = [r for r in table if r["Contender"] == "tfs_async/grpc"]
    assert sorted(r["Concurrency"] for r in sdk) == ["1", "2"]
    assert all(int(r["Requests"]) > 0 and r["Errors"] == "0" for r in sdk)
    data = json.loads((tmp_path / "protocol.json").read_text())
    assert not any("not stable" in n for n in data["notes"])


async def test_max_trials_alone_is_a_usage_error(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tfs_async.cli", "bench", "--max-trials", "5",
        "--no-plots", "--no-progress", "--out", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            _, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 2
    assert "--max-trials needs --stability-percentage" in err.decode()
