"""Writing a run's results: JSON (every raw figure), a Markdown summary, and PNG plots."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tfs_async.bench.aggregate import Aggregate, AggregateKey, aggregate
from tfs_async.bench.results import BenchResult
from tfs_async.bench.verdict import Verdict, floor_gap_us, judge, with_estimates

__all__ = ["ReportFiles", "render_markdown", "verdicts", "write_json", "write_report"]

_NAMES = {"grpc": "gRPC", "http": "HTTP"}

WIRE_NOTE = (
    "gRPC: the serialized PredictRequest/PredictResponse plus gRPC's 5-byte message prefix; "
    "HTTP/2 frame and HPACK header bytes are not counted. HTTP: the JSON bodies, plus the "
    "request line + headers as aiohttp sent them and the status line + headers received "
    "(HTTP/1.1, no chunking); TCP/IP overhead is not counted. `tfs_async/*` request bodies are "
    "the SDK codecs' output for the same tensors; responses are what the server sent the floors."
)

MODEL_NOTE = (
    "The model is an identity (output = input): the response is as large as the request, so "
    "both directions scale with the payload and the figures measure the protocols, not a model."
)


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    json: Path
    markdown: Path
    plots: tuple[Path, ...]


def verdicts(result: BenchResult, aggs: dict[AggregateKey, Aggregate]) -> list[Verdict]:
    """One :class:`Verdict` per payload that ran.

    The floors' gap on the smallest payload stands for the protocols' fixed
    per-request difference; on larger payloads what it grows by is size-dependent.
    """
    by_size = sorted(result.payloads, key=lambda p: result.payloads[p]["nbytes"])
    fixed: tuple[str, float] | None = None
    for payload in by_size:
        gap = floor_gap_us(aggs, payload)
        if gap is not None:
            fixed = (payload, gap)
            break
    return [
        with_estimates(
            judge(
                p,
                aggs,
                result.codec.get(p, {}),
                fixed_gap=fixed if fixed and fixed[0] != p else None,
            ),
            result.estimated_s.get(p, {}),
        )
        for p in result.payloads
    ]


def write_json(result: BenchResult, path: Path) -> Path:
    """Every raw figure (including each cell's encoded HDR histogram) and the verdicts."""
    data = result.as_dict()
    data["verdicts"] = [v.as_dict() for v in verdicts(result, aggregate(result.cells))]
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def write_report(
    result: BenchResult, out_dir: Path, *, plots: bool = True, stem: str = "protocol"
) -> ReportFiles:
    """Write ``<stem>.json``, ``<stem>.md`` and (``plots``) the PNGs under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_json(result, out_dir / f"{stem}.json")
    pngs: tuple[Path, ...] = ()
    if plots:
        from tfs_async.bench.plots import write_plots

        pngs = tuple(write_plots(result, aggregate(result.cells), out_dir, stem=stem))
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(render_markdown(result, pngs), encoding="utf-8")
    return ReportFiles(json_path, md_path, pngs)


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100_000:
        return f"{value / 1000:,.0f} ms"
    if value >= 10_000:
        return f"{value / 1000:,.1f} ms"
    return f"{value:,.0f} us" if value >= 100 else f"{value:,.1f} us"


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(r) + " |" for r in rows)
    return lines


#: closer than this (5%) is reported as a tie: short runs on a noisy machine cannot split it
TIE_RATIO = 1.05


def _rate(rps: float) -> str:
    """Requests/s to read: whole numbers, two significant digits below 10.

    >>> _rate(1973.4), _rate(0.0741)
    ('1,973', '0.074')
    """
    return f"{rps:,.0f}" if rps >= 10 else f"{rps:.2g}"


def _verdict_line(v: Verdict) -> str:
    parts = [f"- **{v.payload}**: "]
    if v.latency_winner and v.latency_ratio:
        loser = "http" if v.latency_winner == "grpc" else "grpc"
        p50s = f"{_us(v.p50_us[v.latency_winner])} vs {_us(v.p50_us[loser])}"
        if v.latency_ratio < TIE_RATIO:
            parts.append(f"tie on latency (p50 at concurrency 1: {p50s}, within 5%)")
        else:
            parts.append(
                f"{_NAMES[v.latency_winner]} won on latency (p50 at concurrency 1: {p50s}, "
                f"{_NAMES[loser]} {v.latency_ratio:.2f}x slower)"
            )
    else:
        parts.append("no latency comparison (a protocol has no successful run)")
    if v.throughput_winner and v.throughput_ratio:
        loser = "http" if v.throughput_winner == "grpc" else "grpc"
        figures = (
            f"{_rate(v.best_rps[v.throughput_winner])} req/s at concurrency "
            f"{v.best_concurrency[v.throughput_winner]} vs {_rate(v.best_rps[loser])} at "
            f"{v.best_concurrency[loser]}"
        )
        if v.throughput_ratio < TIE_RATIO:
            parts.append(f"; tie on throughput ({figures}, within 5%)")
        else:
            parts.append(
                f"; {_NAMES[v.throughput_winner]} won on throughput ({figures}, "
                f"{v.throughput_ratio:.2f}x)"
            )
    parts.append(f". Why: {v.reason}.")
    return "".join(parts)


def render_markdown(result: BenchResult, plots: Iterable[Path] = ()) -> str:
    """The human summary: verdicts first, then the tables they come from."""
    aggs = aggregate(result.cells)
    meta = result.meta
    machine = meta.get("machine", {})
    out: list[str] = ["# tfs_async protocol benchmark: gRPC vs HTTP/REST", ""]
    out += [
        f"Measured {meta.get('started_utc', '?')} ({meta.get('elapsed_s', '?')} s) on "
        f"{machine.get('cpu', '?')}, {machine.get('usable_cpus') or machine.get('cpu_count')} "
        f"usable CPUs, {machine.get('os', '?')}, Python {machine.get('python', '?')} "
        f"({', '.join(f'{k} {v}' for k, v in machine.get('versions', {}).items())}).",
        "",
        f"Target: {meta.get('target', '?')}, model `{meta.get('model', '?')}`. {MODEL_NOTE}",
        "",
    ]
    plan = meta.get("plan", {})
    out += [
        f"Plan: {plan.get('repeats')} interleaved repeats; closed loop: {plan.get('warmup_s')} s "
        f"warm-up (excluded) then {plan.get('duration_s')} s per cell (at least one request per "
        f"worker); open loop at {plan.get('open_loop_load')} x the slower SDK protocol's best "
        f"closed-loop rate for {plan.get('open_loop_duration_s')} s, latency from the scheduled "
        "send time. Throughput and CPU are medians over repeats; percentiles come from the "
        "repeats' pooled HDR histograms.",
        "",
        "## Verdict (the SDK's gRPC vs HTTP transport, this machine)",
        "",
    ]
    vs = verdicts(result, aggs)
    out += [_verdict_line(v) for v in vs] or ["- no payload ran"]
    out += ["", *_overhead_section(aggs), *_errors_section(aggs)]
    out += ["## Closed loop", ""]
    for payload, info in result.payloads.items():
        out += [f"### {payload} ({'x'.join(map(str, info['shape']))} {info['dtype']})", ""]
        out += _closed_table(aggs, payload)
        out.append("")
    out += _open_section(aggs)
    out += _split_section(result, aggs)
    out += _wire_section(result)
    if result.notes:
        out += ["## Notes", "", *(f"- {n}" for n in result.notes), ""]
    pngs = list(plots)
    if pngs:
        out += ["## Plots", "", *(f"![{p.stem}]({p.name})" for p in pngs), ""]
    return "\n".join(out)


def _closed_table(aggs: dict[AggregateKey, Aggregate], payload: str) -> list[str]:
    rows: list[list[str]] = []
    floors = {
        (a.protocol, a.concurrency): a.rps
        for a in aggs.values()
        if a.role == "floor" and a.payload == payload and a.mode == "closed"
    }
    items = sorted(
        (a for a in aggs.values() if a.payload == payload and a.mode == "closed"),
        key=lambda a: (a.concurrency, a.role == "harness", a.contender),
    )
    for a in items:
        floor = floors.get((a.protocol, a.concurrency))
        ratio = f"{a.rps / floor:.2f}" if floor and a.role != "harness" else "-"
        s = a.latency
        rows.append(
            [
                str(a.concurrency),
                f"`{a.contender}`",
                f"{a.rps:,.0f}",
                ratio,
                _us(s.p50_us),
                _us(s.p90_us),
                _us(s.p99_us),
                _us(s.p999_us),
                _us(s.max_us),
                f"{a.cpu_us_per_request:,.0f}",
                str(a.ok),
                str(a.error_count),
            ]
        )
    header = ["conc", "contender", "req/s", "x floor", "p50", "p90", "p99", "p99.9", "max"]
    return _table([*header, "CPU us/req", "ok", "errors"], rows)


def _open_section(aggs: dict[AggregateKey, Aggregate]) -> list[str]:
    items = sorted(
        (a for a in aggs.values() if a.mode == "open"), key=lambda a: (a.payload, a.contender)
    )
    if not items:
        return []
    rows = [
        [
            a.payload,
            f"`{a.contender}`",
            f"{a.target_rate or 0:,.0f}",
            f"{a.rps:,.0f}",
            _us(a.latency.p50_us),
            _us(a.latency.p99_us),
            _us(a.latency.p999_us),
            _us(a.latency.max_us),
            str(a.error_count),
        ]
        for a in items
    ]
    return [
        "## Open loop (fixed arrival rate; latency from the scheduled send time)",
        "",
        *_table(
            ["payload", "contender", "target/s", "done/s", "p50", "p99", "p99.9", "max", "errors"],
            rows,
        ),
        "",
    ]


def _split_section(result: BenchResult, aggs: dict[AggregateKey, Aggregate]) -> list[str]:
    rows: list[list[str]] = []
    for payload, timings in result.codec.items():
        for key, t in timings.items():
            one = aggs.get((key, payload, "closed", 1))
            p50 = one.latency.p50_us if one and one.ok else None
            call = None
            if p50 is not None and t.encode_us is not None and t.decode_us is not None:
                call = max(p50 - t.encode_us - t.decode_us, 0.0)
            floor = aggs.get((f"floor/{key.split('/')[1]}", payload, "closed", 1))
            rows.append(
                [
                    payload,
                    f"`{key}`",
                    _us(t.encode_us),
                    _us(call),
                    _us(t.decode_us),
                    _us(p50),
                    _us(floor.latency.p50_us if floor and floor.ok else None),
                ]
            )
    if not rows:
        return []
    return [
        "## Where the time goes (concurrency 1)",
        "",
        "encode/decode: the client's codec timed apart on the same tensors (decode on the "
        "response bytes the server sent); call = p50 - encode - decode: network, framing, the "
        "server's own parsing and serialization, and the event loop. The floor sends prebuilt "
        "bytes and does not decode: its p50 is the protocol's cost without client "
        "serialization.",
        "",
        *_table(["payload", "client", "encode", "call", "decode", "p50", "floor p50"], rows),
        "",
    ]


def _wire_section(result: BenchResult) -> list[str]:
    rows: list[list[str]] = []
    for payload, by in result.wire.items():
        for key, w in sorted(by.items()):
            rows.append(
                [
                    payload,
                    f"`{key}`",
                    _bytes(w.get("request_body")),
                    _bytes(w.get("request_headers")),
                    _bytes(w.get("response_body")),
                    _bytes(w.get("response_headers")),
                ]
            )
    if not rows:
        return []
    header = ["payload", "contender", "request", "req. headers", "response", "resp. headers"]
    return ["## Bytes on the wire (per request)", "", WIRE_NOTE, "", *_table(header, rows), ""]


def _overhead_section(aggs: dict[AggregateKey, Aggregate]) -> list[str]:
    noop = sorted(
        (a for a in aggs.values() if a.role == "harness" and a.mode == "closed"),
        key=lambda a: (a.concurrency, a.payload),
    )
    seen: dict[int, Aggregate] = {}
    for a in noop:
        seen.setdefault(a.concurrency, a)
    if not seen:
        return []
    parts = [
        f"concurrency {c}: p50 {_us(a.latency.p50_us)}, {a.cpu_us_per_request:.1f} us CPU/request"
        for c, a in sorted(seen.items())
    ]
    return [
        "## Harness overhead",
        "",
        "A no-op request through the same load loop (timing, histogram, worker scheduling): "
        + "; ".join(parts)
        + ". This is included in every figure above and is not subtracted.",
        "",
    ]


def _errors_section(aggs: dict[AggregateKey, Aggregate]) -> list[str]:
    failing = [a for a in aggs.values() if a.error_count or a.warmup_errors]
    if not failing:
        return ["All requests succeeded (no errors in the measured windows or warm-ups).", ""]
    rows = [
        [
            f"`{a.contender}`",
            a.payload,
            a.mode,
            str(a.concurrency),
            str(a.error_count),
            str(a.warmup_errors),
            (a.first_error or "").replace("|", "/")[:160],
        ]
        for a in sorted(failing, key=lambda a: (a.contender, a.payload, a.concurrency))
    ]
    header = ["contender", "payload", "mode", "conc", "errors", "warm-up errors", "first error"]
    return ["## Errors (counted, never dropped)", "", *_table(header, rows), ""]
