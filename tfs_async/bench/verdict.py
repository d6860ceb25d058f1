"""Which protocol won on each payload, by how much, and why (from the encode/call/decode split)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from tfs_async.bench.aggregate import Aggregate, AggregateKey
from tfs_async.bench.codec_split import CodecTiming

__all__ = ["Verdict", "judge", "with_estimates"]

_PROTOCOL_NAME = {"grpc": "gRPC", "http": "HTTP/REST"}


@dataclass(frozen=True)
class Verdict:
    """The SDK's gRPC vs HTTP outcome on one payload."""

    payload: str
    latency_winner: str | None
    #: slower p50 / faster p50 at concurrency 1
    latency_ratio: float | None
    p50_us: dict[str, float]
    throughput_winner: str | None
    #: faster best req/s / slower best req/s (each protocol at its best concurrency)
    throughput_ratio: float | None
    best_rps: dict[str, float]
    best_concurrency: dict[str, int]
    #: client encode+decode per protocol (us)
    codec_us: dict[str, float]
    #: the rest of the p50: network, framing, server work, event loop (us)
    call_us: dict[str, float]
    #: the floors' p50 at concurrency 1: each protocol's cost without client serialization
    floor_p50_us: dict[str, float]
    reason: str
    #: protocols whose figures are estimated (not sent: a request would exceed the plan)
    estimated: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _sdk(aggs: dict[AggregateKey, Aggregate], payload: str, protocol: str) -> list[Aggregate]:
    key = f"tfs_async/{protocol}"
    return [a for (c, p, m, _), a in aggs.items() if c == key and p == payload and m == "closed"]


def floor_gap_us(aggs: dict[AggregateKey, Aggregate], payload: str) -> float | None:
    """HTTP floor p50 minus gRPC floor p50 at concurrency 1 on ``payload`` (us), if both ran."""
    grpc = aggs.get(("floor/grpc", payload, "closed", 1))
    http = aggs.get(("floor/http", payload, "closed", 1))
    if grpc is None or http is None or not grpc.ok or not http.ok:
        return None
    return http.latency.p50_us - grpc.latency.p50_us


def judge(
    payload: str,
    aggs: dict[AggregateKey, Aggregate],
    codec: dict[str, CodecTiming],
    *,
    fixed_gap: tuple[str, float] | None = None,
) -> Verdict:
    """Compare ``tfs_async/grpc`` with ``tfs_async/http`` on ``payload``.

    Latency is the p50 at concurrency 1; throughput each protocol's best
    requests/s over the concurrency levels. The reason splits the p50 gap into
    the client's serialization (encode+decode timed apart), the floors' gap
    (protocol and server without client serialization) and the SDK's transport.
    ``fixed_gap`` is ``(payload, floor_gap_us)`` of the smallest payload: the
    floors' gap there is taken as the protocols' fixed per-request difference,
    and what the floors add beyond it on ``payload`` as size-dependent
    (server-side parsing/serialization and bytes on the wire).
    """
    p50: dict[str, float] = {}
    best_rps: dict[str, float] = {}
    best_level: dict[str, int] = {}
    codec_us: dict[str, float] = {}
    call_us: dict[str, float] = {}
    floor_p50: dict[str, float] = {}
    for protocol in ("grpc", "http"):
        floor = aggs.get((f"floor/{protocol}", payload, "closed", 1))
        if floor is not None and floor.ok:
            floor_p50[protocol] = floor.latency.p50_us
        rows = _sdk(aggs, payload, protocol)
        ones = [a for a in rows if a.concurrency == 1 and a.ok]
        if ones:
            p50[protocol] = ones[0].latency.p50_us
        ok_rows = [a for a in rows if a.ok]
        if ok_rows:
            best = max(ok_rows, key=lambda a: a.rps)
            best_rps[protocol], best_level[protocol] = best.rps, best.concurrency
        timing = codec.get(f"tfs_async/{protocol}")
        if timing and timing.encode_us is not None and timing.decode_us is not None:
            codec_us[protocol] = timing.encode_us + timing.decode_us
            if protocol in p50:
                call_us[protocol] = max(p50[protocol] - codec_us[protocol], 0.0)

    lat_winner = lat_ratio = None
    if len(p50) == 2 and min(p50.values()) > 0:
        lat_winner = min(p50, key=lambda k: p50[k])
        lat_ratio = max(p50.values()) / min(p50.values())
    tp_winner = tp_ratio = None
    if len(best_rps) == 2 and min(best_rps.values()) > 0:
        tp_winner = max(best_rps, key=lambda k: best_rps[k])
        tp_ratio = max(best_rps.values()) / min(best_rps.values())
    return Verdict(
        payload,
        lat_winner,
        lat_ratio,
        p50,
        tp_winner,
        tp_ratio,
        best_rps,
        best_level,
        codec_us,
        call_us,
        floor_p50,
        _reason(p50, codec_us, floor_p50, lat_winner, fixed_gap),
    )


def _reason(
    p50: dict[str, float],
    codec_us: dict[str, float],
    floor_p50: dict[str, float],
    winner: str | None,
    fixed_gap: tuple[str, float] | None,
) -> str:
    if winner is None:
        if len(p50) == 1:
            ran = next(iter(p50))
            other = "http" if ran == "grpc" else "grpc"
            return (
                f"only {_PROTOCOL_NAME[ran]} ran on this payload ({_PROTOCOL_NAME[other]} was "
                "skipped or failed: see the notes and errors)"
            )
        return "not enough figures to compare the protocols"
    loser = "http" if winner == "grpc" else "grpc"
    gap = p50[loser] - p50[winner]
    if gap <= 0:
        return "the two protocols tied at p50"
    if len(codec_us) < 2 or len(floor_p50) < 2:
        return (
            f"{_PROTOCOL_NAME[winner]} was {gap:.0f} us faster at p50; "
            "the encode/decode split or a floor is missing"
        )
    # every term below is "loser minus winner"; together they add up to the p50 gap
    client = codec_us[loser] - codec_us[winner]
    floors = floor_p50[loser] - floor_p50[winner]
    sdk = gap - client - floors
    if fixed_gap is not None:
        base_name, http_minus_grpc = fixed_gap
        fixed = http_minus_grpc if loser == "http" else -http_minus_grpc
    else:
        base_name, fixed = "", floors
    server = floors - fixed
    serialization = client + server
    if abs(serialization) >= abs(fixed) + abs(sdk):
        cause = "serialization"
    elif abs(fixed) >= abs(sdk):
        cause = "per-request overhead of the protocol and server"
    else:
        cause = "the client's own per-request overhead"
    parts = [
        f"mostly {cause}. Of the {gap:.0f} us p50 gap: client encode+decode {client:+.0f} us",
    ]
    if fixed_gap:
        parts.append(
            f"server-side parsing/serialization and bytes on the wire {server:+.0f} us "
            f"(the floors' gap beyond the {fixed:+.0f} us they differ by on {base_name})"
        )
    parts.append(
        f"per-request overhead of protocol and server {fixed:+.0f} us (floors: prebuilt "
        f"bytes, no decoding; p50 {floor_p50[winner]:.0f} vs {floor_p50[loser]:.0f} us)"
    )
    parts.append(f"the SDK's transport beyond the floors {sdk:+.0f} us")
    return "; ".join(parts)


def with_estimates(verdict: Verdict, estimated_s: dict[str, float]) -> Verdict:
    """Name a winner where one protocol was not sent, from its estimated request time.

    ``estimated_s`` maps contender keys to the seconds one request would take
    (scaled from the contender's smaller payloads). A protocol too slow to send
    loses to one that was measured, by about that estimate over the measured p50.

    >>> v = Verdict("p", None, None, {"grpc": 2e6}, None, None, {"grpc": 0.5}, {"grpc": 1},
    ...             {}, {}, {}, "")
    >>> w = with_estimates(v, {"tfs_async/http": 20.0})
    >>> w.latency_winner, round(w.latency_ratio or 0), w.throughput_winner, w.estimated
    ('grpc', 10, 'grpc', ('http',))
    """
    if verdict.latency_winner is not None or set(verdict.p50_us) not in ({"grpc"}, {"http"}):
        return verdict
    (measured,) = verdict.p50_us
    other = "http" if measured == "grpc" else "grpc"
    seconds = estimated_s.get(f"tfs_async/{other}")
    if seconds is None or verdict.p50_us[measured] <= 0:
        return verdict
    ratio = seconds * 1e6 / verdict.p50_us[measured]
    if ratio <= 1:
        return verdict
    rps = verdict.best_rps.get(measured)
    return replace(
        verdict,
        # The estimate stands in for the figures (the reason says so).
        p50_us={**verdict.p50_us, other: seconds * 1e6},
        best_rps={**verdict.best_rps, other: 1 / seconds},
        best_concurrency={**verdict.best_concurrency, other: 1},
        latency_winner=measured,
        latency_ratio=ratio,
        throughput_winner=measured if rps else None,
        throughput_ratio=rps * seconds if rps else None,
        estimated=(other,),
        reason=(
            f"{_PROTOCOL_NAME[other]} not sent: one request would take about {seconds:.0f} s "
            f"(its smaller payloads' time scaled by size); "
            f"{_PROTOCOL_NAME[measured]} took {verdict.p50_us[measured] / 1e6:.2f} s. "
            + verdict.reason
        ).strip(),
    )
