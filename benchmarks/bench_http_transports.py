"""The lean HTTP transport against the aiohttp one: client CPU per request and req/s.

Run: ``.venv/bin/python benchmarks/bench_http_transports.py [--repeats 5] [--scale 1.0]``.

The server is a minimal HTTP/1.1 server (``asyncio.Protocol`` + ``httptools``) in its
own process, answering every ``:predict`` with a canned TF Serving answer of the
size the model name asks for. Not the emulator: its REST handler parses the JSON,
runs the model and encodes the answer, costing more CPU per request than either
client, so on a 2-core machine it would cap req/s for both contenders alike and hide
the difference. Client CPU per request is ``time.process_time`` of the client
process (all its threads) over the requests it completed; the server's CPU is not in
it.

Two levels, both through ``transport.predict`` parts only (no Client layer, which costs
the same over both):

* ``predict``: ``transport.predict(PredictRequest)``: JSON encode, the exchange, JSON decode;
* ``exchange``: the HTTP exchange alone (``transport._exchange``, prebuilt JSON body),
  which is the part the lean transport replaces.

Bodies: 100 B, 4 KiB and 600 KiB requests and answers (float32 vectors in TF Serving's
JSON). Concurrency 1, 16 and 256 (as many connections as callers). Each run first
sends one exchange of its size per worker (connections open, buffers sized: the
steady state a long-lived client is in), then at least two calls per worker. Repeats
are interleaved (aiohttp, lean, lean, aiohttp, ...), each cell reports the medians and
the ratio lean / aiohttp of the medians.

Floors, measured once per repeat in the same run (second table):

* socket floor: a blocking socket sending the same request bytes and reading the
  same answer into one reused buffer, concurrency 1: what the kernel (copies, TCP
  over loopback) costs, which no Python client can go below;
* JSON codec: ``encode_predict_body`` + ``decode_predict_body`` of the same tensor
  and answer, no I/O: what ``predict`` costs on top of ``exchange`` over either
  transport (the share of aiohttp's ``predict`` it takes bounds the ratio there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httptools
import numpy as np

from tfs_async.codec.json import decode_predict_body, encode_predict_body
from tfs_async.transport import CallOptions
from tfs_async.transport.http import HttpTransport
from tfs_async.transport.http_lean import LeanHttpTransport
from tfs_async.types import ModelSpec, PredictRequest

RESULTS = Path(__file__).resolve().parent / "results" / "http_transports.json"
SIZES = {"100 B": 100, "4 KiB": 4 * 1024, "600 KiB": 600 * 1024}
CONCURRENCY = (1, 16, 256)
KINDS: dict[str, type[HttpTransport]] = {"aiohttp": HttpTransport, "lean": LeanHttpTransport}
# Requests per measured run, by body size (scaled by --scale).
REQUESTS = {100: 3000, 4 * 1024: 2000, 600 * 1024: 150}


def vector(size: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A float32 vector whose TF Serving JSON (``0.5,`` per element) is about ``size`` bytes."""
    return np.full(max(1, (size - 20) // 4), 0.5, np.float32)


def canned_answer(size: int) -> bytes:
    body = b'{"outputs": [' + b",".join([b"0.5"] * len(vector(size))) + b"]}"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
        body
    )
    return head + body


# -- the server (its own process) -----------------------------------------------------


class _ServerProtocol(asyncio.Protocol):
    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        assert self.transport is not None
        name = self.url.rsplit(b"/", 1)[-1].split(b":", 1)[0]
        answer = self.answers.get(name)
        if answer is None:
            answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        self.transport.write(answer)


def serve(port_out: Any) -> None:
    """The server process: bind, report the port, serve until terminated."""

    async def main() -> None:
        answers = {f"s{size}".encode(): canned_answer(size) for size in SIZES.values()}
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _ServerProtocol(answers), "127.0.0.1", 0, backlog=1024
        )
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


# -- the client -----------------------------------------------------------------------


def codec_cpu_us(size: int, calls: int) -> float:
    """Client CPU of the shared JSON codec alone per predict: encode the request, decode
    the answer (no I/O): what ``predict`` costs on top of ``exchange`` over either transport.
    """
    x = vector(size)
    answer = canned_answer(size).split(b"\r\n\r\n", 1)[1]
    started = time.process_time()
    for _ in range(calls):
        encode_predict_body({"x": x}, signature_name=None)
        decode_predict_body(answer)
    return (time.process_time() - started) / calls * 1e6


def socket_floor_us(port: int, size: int, calls: int) -> float:
    """Client CPU per exchange of a blocking socket (no event loop, no parser, one reused
    receive buffer): the same request and answer bytes at concurrency 1, the least any
    Python client can spend on them (kernel copies and TCP included)."""
    body = encode_predict_body({"x": vector(size)}, signature_name=None)
    head = b"POST /v1/models/s%d:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n" % size
    head += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    expected = len(canned_answer(size))
    received = memoryview(bytearray(expected))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def one() -> None:
            sock.sendall(head)
            sock.sendall(body)
            got = 0
            while got < expected:
                got += sock.recv_into(received[got:])

        one()
        started = time.process_time()
        for _ in range(calls):
            one()
        return (time.process_time() - started) / calls * 1e6


@dataclass
class Cell:
    """One measured run."""

    cpu_us: float  # client CPU per request
    rps: float


async def measure(
    call: Callable[[], Awaitable[Any]],
    warm: Callable[[], Awaitable[Any]],
    concurrency: int,
    total: int,
) -> Cell:
    """``total`` calls by ``concurrency`` workers back to back (``warm`` opens the connections)."""
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    await asyncio.gather(*(warm() for _ in range(concurrency)))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Cell(cpu / total * 1e6, total / wall)


async def run_cell(
    url: str, kind: str, level: str, size: int, concurrency: int, total: int
) -> Cell:
    transport = KINDS[kind](url, pool_size=concurrency)
    model = ModelSpec(f"s{size}")
    options = CallOptions(timeout=60.0)
    x = vector(size)
    request = PredictRequest(model, {"x": x})
    body = encode_predict_body({"x": x}, signature_name=None)
    path = transport._url(model, ":predict")

    async def predict() -> Any:
        return await transport.predict(request, options)

    async def exchange() -> Any:
        return await transport._exchange("POST", path, body, options, model)

    call = predict if level == "predict" else exchange
    try:
        # Warm: one exchange of this size per worker (connections open, buffers sized);
        # then at least two calls per worker, so that no cell is connections' first use.
        return await measure(call, exchange, concurrency, max(total, 2 * concurrency))
    finally:
        await transport.aclose()


Samples = dict[tuple[str, str, int, int], list[Cell]]
Floors = dict[tuple[str, int], list[float]]


def sample(
    port: int,
    args: argparse.Namespace,
    levels: list[str],
    sizes: dict[str, int],
    concurrencies: list[int],
) -> tuple[Samples, Floors]:
    """Every cell ``args.repeats`` times, interleaved, and the floors once per repeat."""
    url = f"http://127.0.0.1:{port}"
    samples: Samples = {}
    floors: Floors = {}
    for repeat in range(args.repeats):
        order = list(KINDS) if repeat % 2 == 0 else list(reversed(KINDS))
        for size in sizes.values():
            calls = max(5, int(REQUESTS[size] * args.scale) // 5)
            floors.setdefault(("socket", size), []).append(socket_floor_us(port, size, calls))
            if "predict" in levels:
                floors.setdefault(("codec", size), []).append(codec_cpu_us(size, calls))
        for level in levels:
            for size in sizes.values():
                total = max(20, int(REQUESTS[size] * args.scale))
                for concurrency in concurrencies:
                    for kind in order:
                        cell = asyncio.run(run_cell(url, kind, level, size, concurrency, total))
                        samples.setdefault((level, kind, size, concurrency), []).append(cell)
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    return samples, floors


def summarize(
    samples: Samples, levels: list[str], sizes: dict[str, int], concurrencies: list[int]
) -> list[dict[str, Any]]:
    """One row per cell: the medians of each transport and their ratios."""
    rows = []
    for level in levels:
        for label, size in sizes.items():
            for concurrency in concurrencies:
                med = {}
                for kind in KINDS:
                    cells = samples[(level, kind, size, concurrency)]
                    med[kind] = (
                        statistics.median(c.cpu_us for c in cells),
                        statistics.median(c.rps for c in cells),
                    )
                rows.append(
                    {
                        "level": level,
                        "body": label,
                        "concurrency": concurrency,
                        "aiohttp_cpu_us": med["aiohttp"][0],
                        "lean_cpu_us": med["lean"][0],
                        "cpu_ratio": med["lean"][0] / med["aiohttp"][0],
                        "aiohttp_rps": med["aiohttp"][1],
                        "lean_rps": med["lean"][1],
                        "rps_ratio": med["lean"][1] / med["aiohttp"][1],
                    }
                )
    return rows


def floor_rows(
    rows: list[dict[str, Any]], floors: Floors, sizes: dict[str, int], concurrency: int
) -> list[dict[str, Any]]:
    """What no HTTP transport goes below, against aiohttp's cells at ``concurrency``:
    the socket floor for the exchange and, for predict, the shared JSON codec."""
    out = []
    for label, size in sizes.items():
        aiohttp_us = {
            r["level"]: r["aiohttp_cpu_us"]
            for r in rows
            if r["body"] == label and r["concurrency"] == concurrency
        }
        socket_us = statistics.median(floors[("socket", size)])
        codec = floors.get(("codec", size))
        codec_us = statistics.median(codec) if codec else None
        exchange_us, predict_us = aiohttp_us.get("exchange"), aiohttp_us.get("predict")
        out.append(
            {
                "body": label,
                "concurrency": concurrency,
                "socket_floor_cpu_us": socket_us,
                "socket_floor_over_aiohttp_exchange": (
                    socket_us / exchange_us if exchange_us else None
                ),
                "codec_cpu_us": codec_us,
                "codec_over_aiohttp_predict": (
                    codec_us / predict_us if codec_us is not None and predict_us else None
                ),
            }
        )
    return out


def _fmt(value: float | None, ratio: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if ratio else f"{value:.0f}"


def print_tables(rows: list[dict[str, Any]], floors: list[dict[str, Any]]) -> None:
    print(
        "| level | body | conc. | aiohttp CPU µs/req | lean CPU µs/req | CPU lean/aiohttp "
        "| aiohttp req/s | lean req/s | req/s lean/aiohttp |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['level']} | {r['body']} | {r['concurrency']} | {r['aiohttp_cpu_us']:.0f} "
            f"| {r['lean_cpu_us']:.0f} | {r['cpu_ratio']:.2f}x | {r['aiohttp_rps']:.0f} "
            f"| {r['lean_rps']:.0f} | {r['rps_ratio']:.2f}x |"
        )
    print()
    print(
        "| body | socket floor µs/exchange | / aiohttp exchange | JSON codec µs/predict "
        "| / aiohttp predict |"
    )
    print("|---|---:|---:|---:|---:|")
    for f in floors:
        print(
            f"| {f['body']} | {_fmt(f['socket_floor_cpu_us'])} "
            f"| {_fmt(f['socket_floor_over_aiohttp_exchange'], True)} "
            f"| {_fmt(f['codec_cpu_us'])} | {_fmt(f['codec_over_aiohttp_predict'], True)} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats per cell")
    parser.add_argument("--scale", type=float, default=1.0, help="requests per run, scaled")
    parser.add_argument("--levels", default="exchange,predict")
    parser.add_argument("--sizes", default=",".join(SIZES), help="body sizes to run")
    parser.add_argument(
        "--concurrency", default=",".join(map(str, CONCURRENCY)), help="concurrencies to run"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    levels = args.levels.split(",")
    sizes = {label: SIZES[label] for label in args.sizes.split(",")}
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=serve, args=(send,), daemon=True)
    server.start()
    try:
        if not receive.poll(30):
            raise SystemExit("the benchmark server did not start within 30 s")
        samples, floors = sample(receive.recv(), args, levels, sizes, concurrencies)
    finally:
        server.terminate()
        server.join(10)

    rows = summarize(samples, levels, sizes, concurrencies)
    floor = floor_rows(rows, floors, sizes, min(concurrencies))
    print_tables(rows, floor)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"repeats": args.repeats, "scale": args.scale, "python": sys.version.split()[0]}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "floors": floor}, indent=2) + "\n")
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
