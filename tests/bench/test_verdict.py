"""The verdict: who won, by how much, and why, from hand-built figures."""

from __future__ import annotations

import re

import pytest

from tfs_async.bench import _deps
from tfs_async.bench.aggregate import Aggregate, AggregateKey
from tfs_async.bench.baselines import optional_baselines
from tfs_async.bench.codec_split import CodecTiming
from tfs_async.bench.stats import LatencyHistogram
from tfs_async.bench.verdict import judge

PAYLOAD = "f32[32x128]"


def _agg(contender: str, level: int, latency_us: float, rps: float) -> Aggregate:
    hist = LatencyHistogram()
    hist.record_many_ns([int(latency_us * 1000)] * 50)
    protocol = contender.split("/")[1]
    role = "sdk" if contender.startswith("tfs_async") else "floor"
    agg = Aggregate(contender, protocol, role, PAYLOAD, "closed", level, hist)
    agg.rps_runs = [rps]
    agg.ok = 50
    return agg


def _figures(
    grpc_p50: float,
    http_p50: float,
    *,
    floors: tuple[float, float] | None = None,
    grpc_rps: float = 4000,
    http_rps: float = 2000,
) -> dict[AggregateKey, Aggregate]:
    floor_grpc, floor_http = floors or (grpc_p50 * 0.9, grpc_p50 * 0.95)
    rows = [
        _agg("tfs_async/grpc", 1, grpc_p50, 1e6 / grpc_p50),
        _agg("tfs_async/http", 1, http_p50, 1e6 / http_p50),
        _agg("tfs_async/grpc", 16, grpc_p50 * 8, grpc_rps),
        _agg("tfs_async/http", 16, http_p50 * 8, http_rps),
        _agg("floor/grpc", 1, floor_grpc, 1e6 / floor_grpc),
        _agg("floor/http", 1, floor_http, 1e6 / floor_http),
    ]
    return {(a.contender, a.payload, a.mode, a.concurrency): a for a in rows}


def _term(reason: str, name: str) -> float:
    """The signed microseconds the reason gives for ``name``."""
    found = re.search(re.escape(name) + r" ([+-]\d+) us", reason)
    assert found, (name, reason)
    return float(found.group(1))


def _codec(grpc_us: float, http_us: float) -> dict[str, CodecTiming]:
    return {
        "tfs_async/grpc": CodecTiming(grpc_us / 2, grpc_us / 2),
        "tfs_async/http": CodecTiming(http_us / 2, http_us / 2),
    }


def test_client_serialization_bound_gap_is_called_serialization() -> None:
    figures = _figures(1000.0, 2000.0, floors=(900.0, 950.0))
    v = judge(PAYLOAD, figures, _codec(20.0, 900.0))
    assert v.latency_winner == "grpc"
    assert v.latency_ratio == pytest.approx(2.0, rel=0.01)
    assert v.throughput_winner == "grpc"
    assert v.throughput_ratio == pytest.approx(2.0)
    assert v.best_concurrency == {"grpc": 16, "http": 16}
    assert v.reason.startswith("mostly serialization")
    assert _term(v.reason, "client encode+decode") == pytest.approx(880, rel=0.01)
    assert v.call_us["http"] == pytest.approx(2000.0 - 900.0, rel=0.01)
    assert v.floor_p50_us["http"] == pytest.approx(950.0, rel=0.01)


def test_floor_growth_beyond_the_smallest_payload_counts_as_serialization() -> None:
    figures = _figures(1000.0, 5000.0, floors=(900.0, 4500.0))
    v = judge(PAYLOAD, figures, _codec(10.0, 300.0), fixed_gap=("f32[1x10]", 100.0))
    assert v.reason.startswith("mostly serialization")
    assert _term(v.reason, "bytes on the wire") == pytest.approx(3500, rel=0.01)
    assert "+100 us they differ by on f32[1x10]" in v.reason


def test_protocol_overhead_bound_gap_is_called_per_request_overhead() -> None:
    figures = _figures(900.0, 400.0, floors=(850.0, 380.0), grpc_rps=300, http_rps=900)
    v = judge(PAYLOAD, figures, _codec(10.0, 12.0))
    assert v.latency_winner == "http"
    assert v.throughput_winner == "http"
    assert v.reason.startswith("mostly per-request overhead of the protocol and server")
    assert "p50 380 vs 850 us" in v.reason


def test_a_client_slower_than_its_floor_is_blamed_on_the_client() -> None:
    figures = _figures(500.0, 1500.0, floors=(450.0, 480.0))
    v = judge(PAYLOAD, figures, _codec(10.0, 10.0))
    assert v.reason.startswith("mostly the client's own per-request overhead")
    assert _term(v.reason, "the SDK's transport beyond the floors") == pytest.approx(970, rel=0.01)


def test_one_protocol_missing_is_said_plainly() -> None:
    figures = {k: a for k, a in _figures(900.0, 400.0).items() if a.protocol == "grpc"}
    v = judge(PAYLOAD, figures, {})
    assert v.latency_winner is None
    assert v.latency_ratio is None
    assert "only gRPC ran" in v.reason


def test_missing_optional_baselines_are_named_with_their_install_command() -> None:
    found, notes = optional_baselines()
    keys = {c.key for c in found}
    has_stub = _deps.optional("tensorflow_serving.apis.prediction_service_pb2_grpc") is not None
    has_tf = _deps.optional("tensorflow") is not None
    assert ("typical/grpc-stub" in keys) == (has_stub and has_tf)
    assert ("peer/ovmsclient" in keys) == (_deps.optional("ovmsclient") is not None)
    for key in ("typical/grpc-stub", "peer/ovmsclient"):
        if key not in keys:
            assert any(n.startswith(f"{key} skipped") and "pip install" in n for n in notes)
