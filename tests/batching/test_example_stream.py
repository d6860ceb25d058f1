"""examples/stream_jsonl.py: runs as a user runs it, and its memory does not grow with its input."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from tests.support.batching import MODEL, target_of
from tests.support.client import STEP, within
from tfs_async import Batching, Client
from tfs_async.testing import ModelServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stream_jsonl.py"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stream_jsonl", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_runs_from_the_command_line(
    server: ModelServer, protocol: str, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    lines = [json.dumps({"x": [float(i), -float(i)]}) for i in range(300)]
    lines.insert(7, "not json")
    rows.write_text("\n".join(lines) + "\n")
    async with within(STEP * 3):
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            target_of(server, protocol),
            MODEL,
            str(rows),
            "--in-flight",
            "32",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await child.communicate()
    assert child.returncode == 1, err  # one line failed
    assert b"1 lines failed" in err
    answers = [json.loads(line) for line in out.decode().splitlines()]
    assert len(answers) == 301
    assert answers[7] == {"error": answers[7]["error"], "line": 8}
    assert "line 8" in answers[7]["error"]
    good = answers[:7] + answers[8:]
    assert good == [{"y": [2.0 * i, -2.0 * i]} for i in range(300)]


class Sink:
    """Counts answer lines; checks the example never ran far ahead of its writer."""

    def __init__(self, taken: list[int], bound: int) -> None:
        self.taken = taken
        self.bound = bound
        self.lines = 0
        self.failed_lines = 0

    def write(self, text: str) -> int:
        self.lines += 1
        if '"error"' in text:
            self.failed_lines += 1
        assert self.taken[0] - self.lines <= self.bound
        return len(text)


async def pipeline_peak(client: Client, count: int, in_flight: int) -> int:
    """Peak traced memory of the example's pipeline over ``count`` generated lines."""
    module = example()
    taken = [0]

    def lines() -> Iterator[str]:
        for i in range(count):
            taken[0] += 1
            yield json.dumps({"x": [float(i), 1.0]})

    sink = Sink(taken, in_flight + 1)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        failed = await module.run_pipeline(client, MODEL, lines(), sink, max_in_flight=in_flight)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert failed == 0
    assert sink.lines == count == taken[0]
    return int(peak)


async def test_the_example_reads_ahead_boundedly_and_its_memory_does_not_grow(
    server: ModelServer,
) -> None:
    async with (
        Client(f"grpc://{server.grpc_target}", timeout=STEP, batching=Batching()) as client,
        within(STEP * 6),
    ):
        await pipeline_peak(client, 500, 64)  # warm: connections, metadata, caches
        small = await pipeline_peak(client, 2_000, 64)
        large = await pipeline_peak(client, 12_000, 64)
    # Six times the lines, the same memory (about 300 KiB here; anything kept per line
    # would add a megabyte).
    assert large < small * 1.5 + 2**16, (small, large)
