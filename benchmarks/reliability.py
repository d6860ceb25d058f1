"""Reliability figures (issue 9): restarts, replicas, bursts and long outages, nothing lost.

Run: ``.venv/bin/python benchmarks/reliability.py [--quick]`` (``--quick``: a 12 s long
outage instead of 30 s; the rest is the same). Results are printed and written to
``benchmarks/results/reliability.json``.

The server is ``tfs-async serve`` in its own process (``ModelServerProcess``) serving
TF Serving's half_plus_two (y = 0.5 x + 2); it is killed with SIGKILL (a crash) and
restarted on the same ports. Callers use one client per protocol with the default
options and 10 s deadlines; each call sends a distinct x, so each answer is checked
against its own input (a lost, duplicated or misrouted answer cannot pass). A call is
*lost* if it had not ended (answer or typed error) by its deadline + 1 s.

Scenarios:

* ``restart``: 64 callers (32 gRPC, 32 HTTP); the server is killed and restarted about
  5 s later. Asks: >= 99.9 % succeed, 0 lost, 0 wrong, every call ends within its
  deadline + 50 ms.
* ``replicas``: three servers behind ``ipv4:a,b,c`` (gRPC round robin), 32 callers; one
  server is killed for good. Asks: 100 % succeed.
* ``burst``: 3,000 concurrent calls on one client, each transport.
* ``outage``: 64 callers; the server is down for 30 s (``--quick``: 12 s). Asks: requests
  written <= 1.2x calls during the outage, every failed call ends at its deadline.

Attempts are counted by a transport wrapper that forwards every call: *sent* attempts
(a request written, or possibly written) and *connects* (a call that reached no server,
NotSentError, re-sent by wait-for-ready).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfs_async import Client, NotSentError, TFServingError
from tfs_async.testing import ModelServerProcess
from tfs_async.transport.base import CallOptions, Transport
from tfs_async.transport.target import transport_for
from tfs_async.types import PredictRequest, PredictResult

MODEL = "half_plus_two"
FACTORY = "tfs_async.testing.half_plus_two:half_plus_two_model"
DEADLINE = 10.0
SLACK = 0.050


# The call the current caller task is making: attempts are charged to it.
_CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar("call", default=None)


class Counting(Transport):
    """Forwards to a real transport and counts attempts (the benchmark's only instrument)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.protocol = inner.protocol
        self.sends_output_filter = inner.sends_output_filter
        self.sent = 0
        self.connects = 0

    def http_status_for(self, code: Any) -> int | None:
        return self.inner.http_status_for(code)

    async def wait_for_server(self, timeout: float | None) -> bool:
        return await self.inner.wait_for_server(timeout)

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        call = _CURRENT.get()
        try:
            result = await self.inner.predict(request, options)
        except NotSentError:
            self.connects += 1
            if call is not None:
                call.connects += 1
            raise
        except TFServingError:
            self.sent += 1
            if call is not None:
                call.sent += 1
            raise
        self.sent += 1
        if call is not None:
            call.sent += 1
        return result

    async def get_model_metadata(self, model: Any, options: CallOptions) -> Any:
        return await self.inner.get_model_metadata(model, options)

    async def get_model_status(self, model: Any, options: CallOptions) -> Any:
        return await self.inner.get_model_status(model, options)

    async def classify(self, request: Any, options: CallOptions) -> Any:
        return await self.inner.classify(request, options)

    async def regress(self, request: Any, options: CallOptions) -> Any:
        return await self.inner.regress(request, options)

    async def multi_inference(self, request: Any, options: CallOptions) -> Any:
        return await self.inner.multi_inference(request, options)

    async def reload_config(self, config: Any, options: CallOptions) -> None:
        await self.inner.reload_config(config, options)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Call:
    protocol: str
    started: float
    ended: float | None = None
    outcome: str = "pending"  # ok, wrong, or the error class name
    sent: int = 0  # requests written (or maybe written)
    connects: int = 0  # attempts that reached no server


@dataclass
class Tally:
    calls: list[Call] = field(default_factory=list)
    next_x: int = 0

    def summary(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        """Calls that were running at some point within [since, until)."""
        chosen = [
            c
            for c in self.calls
            if (until is None or c.started < until)
            and (since is None or c.ended is None or c.ended >= since)
        ]
        ended = [c for c in chosen if c.ended is not None]
        late = [c for c in ended if c.ended - c.started > DEADLINE + SLACK]  # type: ignore[operator]
        failed = Counter(c.outcome for c in ended if c.outcome not in ("ok", "wrong"))
        failed_elapsed = [
            c.ended - c.started  # type: ignore[operator]
            for c in ended
            if c.outcome not in ("ok", "wrong")
        ]
        ok = sum(c.outcome == "ok" for c in ended)
        sent = sum(c.sent for c in chosen)
        return {
            "sent": len(chosen),
            "succeeded": ok,
            "success_pct": round(100.0 * ok / len(chosen), 3) if chosen else None,
            "failed": dict(failed),
            "wrong": sum(c.outcome == "wrong" for c in ended),
            "lost": len(chosen) - len(ended),
            "late_over_deadline_plus_50ms": len(late),
            "max_elapsed_s": round(max((c.ended - c.started for c in ended), default=0.0), 4),  # type: ignore[operator]
            "attempts_sent": sent,
            "attempts_per_call": round(sent / len(chosen), 4) if chosen else None,
            "connects_not_sent": sum(c.connects for c in chosen),
            "failed_elapsed_s": (
                [round(min(failed_elapsed), 3), round(max(failed_elapsed), 3)]
                if failed_elapsed
                else None
            ),
        }


async def _caller(client: Client, protocol: str, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        tally.next_x += 1
        x = float(tally.next_x)
        call = Call(protocol, time.monotonic())
        tally.calls.append(call)
        _CURRENT.set(call)
        try:
            result = await client.predict(MODEL, {"x": np.array([x], np.float32)})
        except TFServingError as error:
            call.outcome = type(error).__name__
        else:
            y = result.output.reshape(-1)
            call.outcome = "ok" if y.shape == (1,) and float(y[0]) == 0.5 * x + 2 else "wrong"
        call.ended = time.monotonic()


async def _finish(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    # Every call ends by its deadline; a task still running a second later holds a lost call.
    _, pending = await asyncio.wait(tasks, timeout=DEADLINE + 1.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _server(grpc_port: int = 0, rest_port: int = 0) -> ModelServerProcess:
    server = ModelServerProcess(python_models=[FACTORY], grpc_port=grpc_port, rest_port=rest_port)
    server.start()
    return server


def _kill(server: ModelServerProcess) -> None:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    server.stop()


def _clients(server: ModelServerProcess) -> tuple[Client, Counting, Client, Counting]:
    grpc_t = Counting(transport_for(f"grpc://{server.grpc_target}"))
    http_t = Counting(transport_for(server.rest_url))
    return Client(grpc_t, timeout=DEADLINE), grpc_t, Client(http_t, timeout=DEADLINE), http_t


async def _outage(down: float, warm: float, after: float) -> dict[str, Any]:
    """64 callers; SIGKILL, ``down`` s, restart on the same ports; ``after`` s more."""
    first = time.monotonic()
    server = await asyncio.to_thread(_server)
    startup = time.monotonic() - first
    ports = (server.grpc_port or 0, server.rest_port or 0)
    grpc_client, grpc_t, http_client, http_t = _clients(server)
    tally, stop = Tally(), asyncio.Event()
    tasks = [
        asyncio.create_task(_caller(c, p, tally, stop))
        for c, p in [(grpc_client, "grpc")] * 32 + [(http_client, "http")] * 32
    ]
    await asyncio.sleep(warm)
    killed = time.monotonic()
    await asyncio.to_thread(_kill, server)
    await asyncio.sleep(max(down - startup, 0.0))  # the restart itself takes ``startup``
    server = await asyncio.to_thread(_server, *ports)
    back = time.monotonic()
    await asyncio.sleep(after)
    await _finish(tasks, stop)
    await grpc_client.close()
    await http_client.close()
    await asyncio.to_thread(server.stop)
    calls = len(tally.calls)
    return {
        "down_s": round(back - killed, 2),
        "all": tally.summary(),
        "grpc": Tally([c for c in tally.calls if c.protocol == "grpc"]).summary(),
        "http": Tally([c for c in tally.calls if c.protocol == "http"]).summary(),
        # Every call that was running while the server was down (killed -> serving again).
        "during_outage": tally.summary(since=killed, until=back),
        "attempts_sent_total": grpc_t.sent + http_t.sent,
        "calls_total": calls,
    }


async def _replicas(duration: float) -> dict[str, Any]:
    servers = [await asyncio.to_thread(_server) for _ in range(3)]
    target = "ipv4:" + ",".join(f"127.0.0.1:{s.grpc_port}" for s in servers)
    counting = Counting(transport_for(target))
    client = Client(counting, timeout=DEADLINE)
    tally, stop = Tally(), asyncio.Event()
    tasks = [asyncio.create_task(_caller(client, "grpc", tally, stop)) for _ in range(32)]
    await asyncio.sleep(duration / 3)
    await asyncio.to_thread(_kill, servers[1])
    await asyncio.sleep(2 * duration / 3)
    await _finish(tasks, stop)
    await client.close()
    for s in servers:
        await asyncio.to_thread(s.stop)
    return {"target": target, **tally.summary(), "attempts_sent": counting.sent}


async def _burst(n: int) -> dict[str, Any]:
    server = await asyncio.to_thread(_server)
    out: dict[str, Any] = {}
    for protocol, target in (("grpc", f"grpc://{server.grpc_target}"), ("http", server.rest_url)):
        async with Client(target, timeout=60.0) as client:

            async def one(i: int, client: Client = client) -> str:
                x = float(i)
                try:
                    result = await client.predict(MODEL, {"x": np.array([x], np.float32)})
                except TFServingError as error:
                    return type(error).__name__
                except asyncio.CancelledError:
                    return "CancelledError"
                return "ok" if float(result.output.reshape(-1)[0]) == 0.5 * x + 2 else "wrong"

            started = time.monotonic()
            outcomes = Counter(await asyncio.gather(*(one(i) for i in range(n))))
            out[protocol] = {
                "calls": n,
                "outcomes": dict(outcomes),
                "seconds": round(time.monotonic() - started, 2),
            }
    await asyncio.to_thread(server.stop)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 12 s long outage, not 30 s")
    parser.add_argument("--only", choices=["restart", "replicas", "burst", "outage"])
    parser.add_argument("--out", default="benchmarks/results/reliability.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"deadline_s": DEADLINE, "quick": args.quick}
    if args.only in (None, "restart"):
        results["restart"] = await _outage(down=5.0, warm=3.0, after=5.0)
        print("restart", json.dumps(results["restart"], indent=1), flush=True)
    if args.only in (None, "replicas"):
        results["replicas"] = await _replicas(duration=9.0)
        print("replicas", json.dumps(results["replicas"], indent=1), flush=True)
    if args.only in (None, "burst"):
        results["burst"] = await _burst(3000)
        print("burst", json.dumps(results["burst"], indent=1), flush=True)
    if args.only in (None, "outage"):
        down = 12.0 if args.quick else 30.0
        results["outage"] = await _outage(down=down, warm=3.0, after=3.0)
        print("outage", json.dumps(results["outage"], indent=1), flush=True)
    out = Path(args.out)
    await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(out.write_text, json.dumps(results, indent=1) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
