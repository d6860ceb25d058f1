"""Runs a sweep: every contender on every payload and concurrency level, repeats interleaved.

Order within a run: for each repeat, for each payload, for each concurrency
level, every contender once, gRPC and HTTP alternating (the order reversed on
odd repeats so neither protocol always goes first). Repeats of the same cell are
therefore spread over the whole run, and drift of the machine hits every
contender alike. The harness's no-op runs at each level too, so its overhead is
measured under the same conditions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from tfs_async.bench.codec_split import CodecTiming, time_sdk_codec, time_typical_json
from tfs_async.bench.contenders import Contender, Endpoints, NoopContender, Prepared
from tfs_async.bench.loadgen import Call, LoadResult, closed_loop, open_loop
from tfs_async.bench.payloads import Payload, make_payload
from tfs_async.bench.plan import SweepPlan
from tfs_async.bench.results import BenchResult, Cell, machine_info
from tfs_async.bench.stability import Stability, measure_cell

__all__ = ["order_contenders", "run_sweep"]


def order_contenders(contenders: Sequence[Contender], repeat: int) -> list[Contender]:
    """gRPC and HTTP alternating; reversed on odd repeats.

    >>> from tfs_async.bench.baselines import GrpcFloor, HttpFloor
    >>> from tfs_async.bench.contenders import ClientContender
    >>> cs = [ClientContender("grpc"), GrpcFloor(), ClientContender("http"), HttpFloor()]
    >>> [c.key for c in order_contenders(cs, 0)]
    ['tfs_async/grpc', 'tfs_async/http', 'floor/grpc', 'floor/http']
    >>> [c.key for c in order_contenders(cs, 1)][0]
    'floor/http'
    """
    grpc = [c for c in contenders if c.protocol == "grpc"]
    http = [c for c in contenders if c.protocol == "http"]
    other = [c for c in contenders if c.protocol not in ("grpc", "http")]
    mixed: list[Contender] = []
    for i in range(max(len(grpc), len(http))):
        mixed.extend(grpc[i : i + 1])
        mixed.extend(http[i : i + 1])
    mixed.extend(other)
    return mixed[::-1] if repeat % 2 else mixed


ProgressHook = Callable[[str], None]


async def run_sweep(
    endpoints: Endpoints,
    contenders: Sequence[Contender],
    plan: SweepPlan,
    *,
    notes: Sequence[str] = (),
    target_description: str = "",
    progress: Callable[[int], ProgressHook] | None = None,
    stability: Stability | None = None,
) -> BenchResult:
    """Measure every contender over ``plan``; contenders are opened and closed here.

    ``progress(total)`` is called once with the number of cells and returns a
    hook called with a label after each cell (the CLI passes a tqdm bar).
    With ``stability``, each closed-loop cell is measured in windows until its
    throughput and p99 settle (see :mod:`tfs_async.bench.stability`).
    A contender that fails to open or to prepare a payload is reported in the
    notes and its cells are missing; a request that fails is counted in its cell.
    """
    started = dt.datetime.now(dt.timezone.utc)
    result = BenchResult(
        meta={
            "started_utc": started.isoformat(timespec="seconds"),
            "machine": machine_info(),
            "target": target_description,
            "model": endpoints.model.name,
            "plan": plan.as_dict(),
        },
        contenders=[
            {"key": c.key, "label": c.label, "protocol": c.protocol, "role": c.role}
            for c in [*contenders, NoopContender()]
        ],
        notes=list(notes),
    )
    payloads: list[Payload] = []
    for name in plan.payloads:
        payload = make_payload(name, endpoints.model)
        if payload is None:
            result.notes.append(f"payload {name} skipped: the target has no string signature")
            continue
        payloads.append(payload)
        levels, skipped = plan.levels_for(payload.nbytes)
        result.payloads[name] = {
            "shape": list(payload.array.shape),
            "dtype": "bytes" if payload.array.dtype == object else payload.array.dtype.name,
            "nbytes": payload.nbytes,
            "signature": payload.signature,
            "concurrency": levels,
        }
        if skipped:
            result.notes.append(
                f"payload {name}: concurrency {', '.join(map(str, skipped))} skipped "
                f"({payload.nbytes / 2**20:.1f} MiB per request exceeds the "
                f"{plan.in_flight_budget_bytes / 2**20:.0f} MiB in-flight budget)"
            )
    max_level = max(plan.concurrency)
    live: list[Contender] = []
    for contender in contenders:
        try:
            await contender.open(endpoints, max_concurrency=max_level)
        except Exception as exc:
            result.notes.append(f"{contender.key} could not start: {type(exc).__name__}: {exc}")
            await _close_quietly(contender)
        else:
            live.append(contender)
    noop = NoopContender()
    hook = progress(_count_cells(plan, payloads, len(live))) if progress else None
    try:
        await _sweep(endpoints, live, noop, payloads, plan, result, hook, stability)
    finally:
        for contender in live:
            await _close_quietly(contender)
    result.meta["finished_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    result.meta["elapsed_s"] = round(
        (dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1
    )
    return result


async def _close_quietly(contender: Contender) -> None:
    try:
        await contender.close()
    except Exception:  # a failing close must not hide the figures measured
        return


def _count_cells(plan: SweepPlan, payloads: Sequence[Payload], contenders: int) -> int:
    total = 0
    for payload in payloads:
        levels, _ = plan.levels_for(payload.nbytes)
        total += len(levels) * (contenders + 1)
        if plan.open_loop and payload.nbytes <= plan.open_loop_max_payload_bytes:
            total += contenders
    return total * plan.repeats


async def _sweep(
    endpoints: Endpoints,
    contenders: list[Contender],
    noop: NoopContender,
    payloads: list[Payload],
    plan: SweepPlan,
    result: BenchResult,
    hook: ProgressHook | None,
    stability: Stability | None = None,
) -> None:
    prepared: dict[tuple[str, str], _Ready | None] = {}
    rates: dict[str, float] = {}
    for repeat in range(plan.repeats):
        for payload in payloads:
            order = order_contenders(contenders, repeat)
            levels, _ = plan.levels_for(payload.nbytes)
            for level in levels:
                for contender in [*order, noop]:
                    ready = await _prepared(prepared, contender, payload, plan, result)
                    if (
                        ready
                        and ready.probe is not None
                        and _one_request(ready, contender, level, "closed", repeat, plan)
                    ):
                        # Both protocols on every payload: the probe's one request, noted.
                        result.cells.append(_cell(contender, payload, "closed", 1, 0, ready.probe))
                        result.notes.append(
                            f"{contender.key} on {payload.name}: one request at concurrency 1 "
                            f"(it took {ready.probe_s:.2f} s; a cell would exceed the plan's "
                            f"{plan.max_cell_s:g} s)"
                        )
                    elif ready and _fits(ready, contender, payload, level, "closed", plan, result):
                        load = await measure_cell(
                            _closed_window(ready.prepared.call, level, plan),
                            stability,
                            result.notes,
                            f"{contender.key} on {payload.name} at concurrency {level}",
                        )
                        result.cells.append(
                            _cell(contender, payload, "closed", level, repeat, load)
                        )
                    if hook:
                        hook(f"{payload.name} c={level} {contender.key}")
            if plan.open_loop and payload.nbytes <= plan.open_loop_max_payload_bytes:
                rate = rates.get(payload.name) or _open_loop_rate(result, payload.name, plan)
                rates[payload.name] = rate
                top = max(levels)
                for contender in order:
                    ready = await _prepared(prepared, contender, payload, plan, result)
                    if (
                        ready
                        and rate > 0
                        and _fits(ready, contender, payload, top, "open", plan, result)
                    ):
                        load = await open_loop(
                            ready.prepared.call,
                            rate=rate,
                            duration_s=plan.open_loop_duration_s,
                            max_in_flight=top,
                        )
                        result.cells.append(_cell(contender, payload, "open", top, repeat, load))
                    if hook:
                        hook(f"{payload.name} open {rate:.0f}/s {contender.key}")
        if repeat == 0:
            _time_codecs(endpoints, contenders, payloads, prepared, plan, result)


def _closed_window(
    call: Call, level: int, plan: SweepPlan
) -> Callable[[int], Awaitable[LoadResult]]:
    """One closed-loop measurement window; only the first (trial 0) warms up."""

    def window(trial: int) -> Awaitable[LoadResult]:
        return closed_loop(
            call,
            concurrency=level,
            duration_s=plan.duration_s,
            warmup_s=plan.warmup_s if trial == 0 else 0.0,
            warmup_requests=1 if trial == 0 else 0,
            max_requests=plan.max_requests,
        )

    return window


@dataclass
class _Ready:
    prepared: Prepared
    #: seconds one request took (the probe sent right after preparing)
    probe_s: float
    #: the size of the payload probed
    nbytes: int = 0
    #: cells already reported as skipped (reported once, not once per repeat)
    skipped: set[tuple[str, str, int, str]] = field(default_factory=set)
    #: the last probe, one request at concurrency 1
    probe: LoadResult | None = None


def _estimate_s(
    cache: dict[tuple[str, str], _Ready | None], contender: Contender, payload: Payload
) -> float | None:
    """One request's time on ``payload``, scaled from the contender's largest smaller probe."""
    smaller = [
        r
        for (key, _), r in cache.items()
        if key == contender.key and r is not None and 0 < r.nbytes < payload.nbytes
    ]
    # Scaled from a much smaller payload, the fixed per-request cost would dominate
    # the estimate (a 1x10 probe says nothing of a 32x128 request): probe instead.
    smaller = [r for r in smaller if payload.nbytes <= r.nbytes * _MAX_SCALE]
    if not smaller:
        return None
    base = max(smaller, key=lambda r: r.nbytes)
    return base.probe_s * payload.nbytes / base.nbytes


#: how much larger than its probed payload a payload's time is estimated from
_MAX_SCALE = 100


async def _prepared(
    cache: dict[tuple[str, str], _Ready | None],
    contender: Contender,
    payload: Payload,
    plan: SweepPlan,
    result: BenchResult,
) -> _Ready | None:
    key = (contender.key, payload.name)
    if key in cache:
        return cache[key]
    ready: _Ready | None = None
    estimate = _estimate_s(cache, contender, payload)
    limit = max(plan.max_cell_s, plan.max_one_request_s if _judged(contender) else 0.0)
    if estimate is not None and estimate * 2 > limit:
        result.notes.append(
            f"{contender.key} on {payload.name}: skipped without sending, a request would take "
            f"about {estimate:.1f} s (its smaller payloads' time scaled by size), over the "
            f"plan's {limit:g} s"
        )
        result.estimated_s.setdefault(payload.name, {})[contender.key] = estimate
        cache[key] = None
        return None
    try:
        prepared = await contender.prepare(payload)
    except Exception as exc:
        result.notes.append(
            f"{contender.key} on {payload.name} failed to prepare: "
            f"{type(exc).__name__}: {str(exc)[:300]}"
        )
    else:
        probe: LoadResult | None = None
        for _ in range(2):
            # One request, measured like a cell (a slow payload's only figure, see _one_request).
            timed = await closed_loop(
                prepared.call, concurrency=1, duration_s=1e-9, warmup_requests=0, max_requests=1
            )
            if timed.error_count:  # the cells will count the failures; say it here too
                result.notes.append(
                    f"{contender.key} on {payload.name}: probe request failed: {timed.first_error}"
                )
                probe = timed
                break
            # The first request may open connections or fetch metadata: when it was
            # quick, a second one times the request alone; the faster of the two counts
            # (a stall of the machine must not skip the payload's cells).
            if probe is None or timed.wall_s < probe.wall_s:
                probe = timed
            if timed.wall_s * 8 > plan.max_cell_s:
                break
        assert probe is not None
        ready = _Ready(prepared, probe.wall_s, payload.nbytes, probe=probe)
        if contender.role != "harness":
            result.wire.setdefault(payload.name, {})[contender.key] = {
                "request_body": prepared.request_bytes,
                "response_body": prepared.response_bytes,
                "request_headers": prepared.request_header_bytes,
                "response_headers": prepared.response_header_bytes,
            }
    cache[key] = ready
    return ready


def _judged(contender: Contender) -> bool:
    """An SDK line the verdict judges (not a variant): it gets a request on every payload.

    >>> from tfs_async.bench.contenders import ClientContender
    >>> _judged(ClientContender("http")), _judged(ClientContender("http", variant="aiohttp"))
    (True, False)
    """
    return contender.role == "sdk" and not getattr(contender, "variant", "")


def _one_request(
    ready: _Ready, contender: Contender, level: int, mode: str, repeat: int, plan: SweepPlan
) -> bool:
    """Whether this cell is the one request a judged SDK line gets where no cell fits."""
    return (
        _judged(contender)
        and mode == "closed"
        and level == 1
        and repeat == 0
        and not plan.fits_time(ready.probe_s, 1)
        and ready.probe_s * 2 <= plan.max_one_request_s
    )


def _fits(
    ready: _Ready,
    contender: Contender,
    payload: Payload,
    level: int,
    mode: str,
    plan: SweepPlan,
    result: BenchResult,
) -> bool:
    if plan.fits_time(ready.probe_s, level):
        return True
    if (contender.key, payload.name, level, mode) in ready.skipped:
        return False
    ready.skipped.add((contender.key, payload.name, level, mode))
    result.notes.append(
        f"{contender.key} on {payload.name}, {mode} loop at concurrency {level}: skipped, one "
        f"request took {ready.probe_s:.2f} s, so the cell would exceed the plan's "
        f"{plan.max_cell_s:g} s per cell"
    )
    return False


def _cell(
    contender: Contender, payload: Payload, mode: str, level: int, repeat: int, load: LoadResult
) -> Cell:
    return Cell(
        contender.key, contender.protocol, contender.role, payload.name, mode, level, repeat, load
    )


def _open_loop_rate(result: BenchResult, payload: str, plan: SweepPlan) -> float:
    """``open_loop_load`` x the slower SDK protocol's best closed-loop rate on ``payload``."""
    best: dict[str, float] = {}
    for cell in result.cells:
        if cell.payload == payload and cell.mode == "closed" and cell.role == "sdk":
            best[cell.contender] = max(best.get(cell.contender, 0.0), cell.result.rps)
    if not best:  # no SDK contender ran: pace against the floors instead
        for cell in result.cells:
            if cell.payload == payload and cell.mode == "closed" and cell.role == "floor":
                best[cell.contender] = max(best.get(cell.contender, 0.0), cell.result.rps)
    return plan.open_loop_load * min(best.values()) if best else 0.0


def _time_codecs(
    endpoints: Endpoints,
    contenders: list[Contender],
    payloads: list[Payload],
    prepared: dict[tuple[str, str], _Ready | None],
    plan: SweepPlan,
    result: BenchResult,
) -> None:
    for payload in payloads:
        # only where the contender ran: a payload too slow to send is too slow to time here
        keys = {c.key for c in contenders if prepared.get((c.key, payload.name))}
        timings: dict[str, CodecTiming] = {}
        for protocol in ("grpc", "http"):
            if f"tfs_async/{protocol}" not in keys:
                continue
            floor = prepared.get((f"floor/{protocol}", payload.name))
            body = floor.prepared.sample_response if floor else None
            timings[f"tfs_async/{protocol}"] = time_sdk_codec(
                protocol, endpoints.model.name, payload, body, budget_s=plan.codec_budget_s
            )
        if "typical/http" in keys:
            floor = prepared.get(("floor/http", payload.name))
            timings["typical/http"] = time_typical_json(
                payload,
                floor.prepared.sample_response if floor else None,
                budget_s=plan.codec_budget_s,
            )
        result.codec[payload.name] = timings
