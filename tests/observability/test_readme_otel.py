"""The README's OpenTelemetry example runs and prints the trace it describes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def _spans(text: str) -> list[dict[str, Any]]:
    decoder, at = json.JSONDecoder(), 0
    spans: list[dict[str, Any]] = []
    while True:
        start = text.find("{", at)
        if start < 0:
            return spans
        span, at = decoder.raw_decode(text, start)
        spans.append(span)


def test_the_otel_example_prints_one_call_with_two_attempts(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "OpenTelemetryObserver()" in b)
    script = tmp_path / "otel_example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    first, second, call, handler = _spans(done.stdout)
    predict = "tensorflow.serving.PredictionService/Predict"
    assert [s["name"] for s in (first, second, call)] == [predict] * 3
    assert handler["name"] == "handle request"
    assert (first["kind"], second["kind"], call["kind"]) == (
        "SpanKind.CLIENT",
        "SpanKind.CLIENT",
        "SpanKind.INTERNAL",
    )
    assert first["status"] == {"status_code": "ERROR", "description": "UNAVAILABLE"}
    assert first["attributes"]["rpc.grpc.status_code"] == 14
    assert first["attributes"]["tfs_async.attempt"] == 1
    assert second["attributes"]["tfs_async.attempt"] == 2
    assert second["attributes"]["rpc.grpc.status_code"] == 0
    assert first["parent_id"] == second["parent_id"] == call["context"]["span_id"]
    assert call["parent_id"] == handler["context"]["span_id"]
    assert call["attributes"]["tfs_async.attempts"] == 2
    assert [e["name"] for e in call["events"]] == ["retry"]
    assert len({s["context"]["trace_id"] for s in (first, second, call, handler)}) == 1
