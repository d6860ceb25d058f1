"""``tfs-async bench`` end to end: against its own emulator process, and against a given server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tfs_async.bench import _deps
from tfs_async.bench.cli import build_contenders, plan_from_args
from tfs_async.bench.plan import QUICK
from tfs_async.cli import build_parser
from tfs_async.testing import ModelServer

TIMEOUT = 90
TINY = [
    "--payloads", "f32[1x10],bytes[32]x100",
    "--concurrency", "1,2",
    "--repeats", "1",
    "--duration", "0.03",
    "--warmup", "0",
    "--open-loop-duration", "0.03",
    "--no-progress",
]  # fmt: skip


async def _bench(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tfs_async.cli", "bench", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _outputs(out_dir: Path) -> tuple[dict[str, Any], str, list[str]]:
    """The JSON, the Markdown and the PNG names a run wrote."""
    md = out_dir / "protocol.md"
    return (
        json.loads((out_dir / "protocol.json").read_text()),
        md.read_text() if md.exists() else "",
        sorted(p.name for p in out_dir.glob("*.png")),
    )


async def test_bench_against_its_own_emulator_process(tmp_path: Path) -> None:
    code, out, err = await _bench(*TINY, "--out", str(tmp_path))
    assert code == 0, err
    data, md, pngs = _outputs(tmp_path)
    assert "emulator in its own process" in data["meta"]["target"]
    assert {c["payload"] for c in data["cells"]} == {"f32[1x10]", "bytes[32]x100"}
    assert md.startswith("# tfs_async protocol benchmark")
    assert "protocol_throughput.png" in pngs
    assert any(p.startswith("protocol_cdf_") for p in pngs)
    assert "latency" in out
    assert "results:" in out


async def test_bench_against_a_given_server_with_flags(
    bench_server: ModelServer, tmp_path: Path
) -> None:
    code, _, err = await _bench(
        *TINY,
        "--grpc", bench_server.grpc_target,
        "--rest", bench_server.rest_url,
        "--model", "bench",
        "--no-plots",
        "--no-open-loop",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    data, _, pngs = _outputs(tmp_path)
    assert bench_server.grpc_target in data["meta"]["target"]
    # a real server has no known string signature unless --bytes-signature names one
    assert {c["payload"] for c in data["cells"]} == {"f32[1x10]"}
    assert any("bytes[32]x100 skipped" in n for n in data["notes"])
    assert pngs == []
    assert all(c["mode"] == "closed" for c in data["cells"])


async def test_bench_exit_code_reports_failed_requests(
    bench_server: ModelServer, tmp_path: Path
) -> None:
    code, out, _ = await _bench(
        *TINY, "--grpc", bench_server.grpc_target, "--model", "no_such_model",
        "--no-plots", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 1
    assert "requests failed" in out


def test_quick_plan_and_overrides() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["bench", "--quick", "--repeats", "3", "--concurrency", "1,8", "--max-cell-seconds", "9"]
    )
    plan = plan_from_args(args)
    assert plan.repeats == 3
    assert plan.max_cell_s == 9
    assert plan.concurrency == (1, 8)
    assert plan.duration_s == QUICK.duration_s
    full = plan_from_args(parser.parse_args(["bench"]))
    assert full.concurrency == (1, 16, 64, 256)
    assert len(full.payloads) == 5


def test_only_filters_contenders_and_rejects_unknown_names() -> None:
    contenders, notes = build_contenders(["grpc", "http"], ["floor/grpc", "tfs_async/http"])
    assert [c.key for c in contenders] == ["floor/grpc", "tfs_async/http"]
    assert any("ovmsclient" in n for n in notes) or any(
        c.key == "peer/ovmsclient" for c in build_contenders(["grpc"], None)[0]
    )
    with pytest.raises(ValueError, match="unknown contenders"):
        build_contenders(["grpc"], ["floor/http"])


def test_missing_optional_dependency_names_the_extra() -> None:
    with pytest.raises(_deps.MissingDependencyError, match=r"pip install tfs-async\[bench\]"):
        _deps.require("tfs_async_no_such_module", "hdrhistogram")
