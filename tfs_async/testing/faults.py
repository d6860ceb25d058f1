"""Fault injection for tests of clients: latency, errors, dropped connections, stalls.

Two layers: :class:`FaultPlan` acts inside the emulator's services (per call:
latency, status codes, dropped connections, stalls), and :class:`FaultProxy`, a
TCP proxy in front of any server, breaks the byte stream itself (a connection
reset after part of the answer was sent, or a listener that accepts connections
and never answers), below HTTP/2 and HTTP/1.1 framing alike.

A :class:`FaultPlan` holds :class:`Fault` rules and a seeded random generator.
Both network services ask the plan, before serving a call, what to do with it
(:meth:`FaultPlan.decide`), then carry the decision out. The same seed and the
same sequence of calls give the same decisions. The plan is mutable: a test can
add or clear rules while the server runs.

>>> from tfs_async.errors import StatusCode
>>> plan = FaultPlan(seed=7)
>>> rule = plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE, times=2))
>>> [plan.decide("grpc", "predict", "m").error is not None for _ in range(3)]
[True, True, False]
>>> plan.decide("grpc", "get_model_status", "m").error is None
True
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tfs_async.errors import StatusCode
from tfs_async.testing.status import ServingStatus

__all__ = [
    "METHODS",
    "ConnectionDropped",
    "Fault",
    "FaultDecision",
    "FaultPlan",
    "FaultProxy",
    "Latency",
    "Protocol",
    "exponential_latency",
    "fault_from_dict",
    "uniform_latency",
]

Protocol = Literal["grpc", "rest"]

#: The call names a :class:`Fault` can target (gRPC methods, REST actions alike).
METHODS = frozenset(
    {
        "predict",
        "classify",
        "regress",
        "multi_inference",
        "get_model_metadata",
        "get_model_status",
        "reload_config",
    }
)

#: Added latency: fixed seconds, or a function drawing seconds from the plan's generator.
Latency = float | Callable[[random.Random], float]


def uniform_latency(low: float, high: float) -> Callable[[random.Random], float]:
    """A latency drawn uniformly from ``[low, high]`` seconds.

    >>> draw = uniform_latency(0.1, 0.2)
    >>> 0.1 <= draw(random.Random(1)) <= 0.2
    True
    """
    if not 0 <= low <= high:
        raise ValueError(f"uniform_latency needs 0 <= low <= high, got {low}, {high}")
    return lambda rng: rng.uniform(low, high)


def exponential_latency(
    mean: float, *, cap: float | None = None
) -> Callable[[random.Random], float]:
    """A latency drawn from an exponential distribution of ``mean`` seconds, cut at ``cap``.

    >>> exponential_latency(0.01, cap=0.05)(random.Random(1)) <= 0.05
    True
    """
    if mean <= 0:
        raise ValueError(f"exponential_latency needs mean > 0, got {mean}")

    def draw(rng: random.Random) -> float:
        value = rng.expovariate(1.0 / mean)
        return value if cap is None else min(value, cap)

    return draw


def fault_from_dict(spec: Mapping[str, Any]) -> Fault:
    """A :class:`Fault` from plain data (JSON), for faults that cross a process boundary.

    ``code`` is a status code name; ``latency`` is seconds, ``{"uniform": [low, high]}``
    or ``{"exponential": mean, "cap": seconds}``.

    >>> fault_from_dict({"method": "predict", "code": "ABORTED", "error_rate": 0.5}).code.name
    'ABORTED'
    >>> fault_from_dict({"latency": {"uniform": [0.1, 0.2]}}).latency(random.Random(0)) >= 0.1
    True
    """
    fields = dict(spec)
    if "code" in fields:
        try:
            fields["code"] = StatusCode[str(fields["code"]).upper()]
        except KeyError:
            raise ValueError(f"unknown status code {fields['code']!r}") from None
    latency = fields.get("latency")
    if isinstance(latency, Mapping):
        if "uniform" in latency:
            low, high = latency["uniform"]
            fields["latency"] = uniform_latency(float(low), float(high))
        elif "exponential" in latency:
            cap = latency.get("cap")
            fields["latency"] = exponential_latency(
                float(latency["exponential"]), cap=None if cap is None else float(cap)
            )
        else:
            raise ValueError(f"latency must be seconds, uniform or exponential: {latency!r}")
    try:
        return Fault(**fields)
    except TypeError as exc:
        raise ValueError(f"bad fault {dict(spec)!r}: {exc}") from None


class ConnectionDropped(Exception):
    """Raised inside a service when a fault says: drop the connection without answering."""


@dataclass
class Fault:
    """One fault rule; a call matches when every set selector matches.

    Selectors: ``method`` (one of :data:`METHODS`), ``model`` (model name),
    ``protocol`` ("grpc" or "rest"); ``None`` matches anything.

    Effects, tried in this order for a matching call:
    ``latency`` is added first (seconds, or drawn); then with probability
    ``stall_rate`` the call stalls until :meth:`FaultPlan.release_stalls` or the
    client gives up; else with probability ``drop_rate`` the connection is
    dropped; else with probability ``error_rate`` the call fails with ``code``
    and ``message`` (over REST with the HTTP status TF Serving uses for that code).

    ``times`` limits how many calls the rule affects (then it stays in the plan,
    spent); ``None`` means no limit. Only calls that received an effect count.
    """

    method: str | None = None
    model: str | None = None
    protocol: Protocol | None = None
    latency: Latency = 0.0
    error_rate: float = 0.0
    code: StatusCode = StatusCode.UNAVAILABLE
    message: str = "injected fault"
    drop_rate: float = 0.0
    stall_rate: float = 0.0
    times: int | None = None
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {sorted(METHODS)}")
        for name in ("error_rate", "drop_rate", "stall_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if isinstance(self.latency, (int, float)) and self.latency < 0:
            raise ValueError(f"latency must be >= 0, got {self.latency}")
        if self.code == StatusCode.OK:
            raise ValueError("an injected error cannot have code OK")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0, got {self.times}")

    def matches(self, protocol: Protocol, method: str, model: str | None) -> bool:
        """Whether this rule applies to the call (ignoring ``times``)."""
        return (
            (self.protocol is None or self.protocol == protocol)
            and (self.method is None or self.method == method)
            and (self.model is None or self.model == model)
        )

    @property
    def spent(self) -> bool:
        """True once the rule affected ``times`` calls."""
        return self.times is not None and self.hits >= self.times


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one call: wait ``delay`` seconds, then stall, drop, fail or serve."""

    delay: float = 0.0
    stall: bool = False
    drop: bool = False
    error: ServingStatus | None = None

    @property
    def is_noop(self) -> bool:
        """True when the call is served normally with no added delay."""
        return self.delay == 0.0 and not self.stall and not self.drop and self.error is None


_NOOP = FaultDecision()


class FaultPlan:
    """A mutable, seeded set of :class:`Fault` rules shared by a server's services.

    Decisions are made under a lock in call-arrival order, so a given seed and
    call sequence always yields the same faults. Rules are tried in the order
    added; every matching rule's latency adds up, and the first rule that gives
    a call a stall, drop or error decides its outcome.
    """

    def __init__(self, rules: Sequence[Fault] = (), *, seed: int = 0) -> None:
        self._rules: list[Fault] = list(rules)
        self._rng = random.Random(seed)
        self._seed = seed
        self._lock = threading.Lock()
        self._release = asyncio.Event()
        self._stall_changed = asyncio.Event()
        self.calls = 0
        #: How many calls are stalled right now.
        self.stalled = 0

    @property
    def rules(self) -> tuple[Fault, ...]:
        """The current rules, in order."""
        return tuple(self._rules)

    def add(self, rule: Fault) -> Fault:
        """Append ``rule`` (takes effect for the next call) and return it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: Fault) -> None:
        """Remove ``rule`` from the plan."""
        with self._lock:
            self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule and release stalled calls; the server answers normally again."""
        with self._lock:
            self._rules.clear()
        self.release_stalls()

    def reseed(self, seed: int) -> None:
        """Restart the random sequence from ``seed`` and reset the rules' hit counts."""
        with self._lock:
            self._rng = random.Random(seed)
            self._seed = seed
            self.calls = 0
            for rule in self._rules:
                rule.hits = 0

    def release_stalls(self) -> None:
        """Let every call currently stalled go on (they are then served normally)."""
        self._release.set()
        # Calls that stall from now on wait on a fresh event.
        self._release = asyncio.Event()

    def decide(self, protocol: Protocol, method: str, model: str | None) -> FaultDecision:
        """The fate of one call of ``method`` on ``model`` over ``protocol``."""
        with self._lock:
            self.calls += 1
            if not self._rules:
                return _NOOP
            delay = 0.0
            for rule in self._rules:
                if rule.spent or not rule.matches(protocol, method, model):
                    continue
                extra = rule.latency(self._rng) if callable(rule.latency) else rule.latency
                # Draw every probability even when zero, so adding one effect to a
                # rule does not shift the sequence of the others.
                stall = self._rng.random() < rule.stall_rate
                drop = self._rng.random() < rule.drop_rate
                fail = self._rng.random() < rule.error_rate
                if extra > 0 or stall or drop or fail:
                    rule.hits += 1
                delay += extra
                if stall:
                    return FaultDecision(delay=delay, stall=True)
                if drop:
                    return FaultDecision(delay=delay, drop=True)
                if fail:
                    return FaultDecision(delay=delay, error=ServingStatus(rule.code, rule.message))
            return FaultDecision(delay=delay) if delay else _NOOP

    async def apply(self, protocol: Protocol, method: str, model: str | None) -> None:
        """Decide and carry out the decision for one call, in the service's task.

        Returns when the call should be served; raises :class:`ServingStatus`
        for an injected error and :class:`ConnectionDropped` for a dropped
        connection. A stalled call waits until :meth:`release_stalls` (or until
        the service cancels it because the client went away).
        """
        decision = self.decide(protocol, method, model)
        if decision.is_noop:
            return
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        if decision.stall:
            release = self._release
            self.stalled += 1
            self._notify_stall()
            try:
                await release.wait()
            finally:
                self.stalled -= 1
                self._notify_stall()
        if decision.drop:
            raise ConnectionDropped(f"injected dropped connection ({method})")
        if decision.error is not None:
            raise decision.error

    async def wait_stalled(self, count: int = 1) -> None:
        """Return once at least ``count`` calls are stalled (bound it with a timeout)."""
        while self.stalled < count:
            await self._stall_changed.wait()

    async def wait_unstalled(self) -> None:
        """Return once no call is stalled, e.g. after their clients gave up (bound it)."""
        while self.stalled:
            await self._stall_changed.wait()

    def _notify_stall(self) -> None:
        # Wake every waiter once, then arm a fresh event for the next change.
        self._stall_changed.set()
        self._stall_changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"FaultPlan(seed={self._seed}, rules={self._rules!r})"


class FaultProxy:
    """A TCP proxy on 127.0.0.1 that breaks connections to ``upstream`` on purpose.

    Point a client at :attr:`address` instead of the server. With no fault set
    it forwards bytes both ways unchanged. Faults (attributes, changeable while
    it runs; each applies to connections accepted after the change):

    * ``reset_after``: after this many bytes of the server's answer have been
      passed to the client on a connection, both sides of it are reset (TCP RST):
      a connection reset mid-response. ``resets_left`` bounds how many
      connections are reset (``None``: every one); :attr:`resets` counts them.
    * ``blackhole``: accept connections, read what the client sends and never
      answer nor forward anything (a server that accepts and hangs).

    :attr:`accepted` counts accepted connections. Use ``async with`` (or
    :meth:`start` / :meth:`stop`); stopping closes every connection.

    >>> proxy = FaultProxy(("127.0.0.1", 8500), reset_after=1024, resets_left=1)
    >>> proxy.reset_after, proxy.blackhole
    (1024, False)
    """

    def __init__(
        self,
        upstream: tuple[str, int] | None,
        *,
        reset_after: int | None = None,
        resets_left: int | None = None,
        blackhole: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        if upstream is None and not blackhole:
            raise ValueError("a FaultProxy without an upstream can only be a blackhole")
        if reset_after is not None and reset_after < 0:
            raise ValueError(f"reset_after must be >= 0, got {reset_after}")
        self.upstream = upstream
        self.reset_after = reset_after
        self.resets_left = resets_left
        self.blackhole = blackhole
        self.host = host
        self.port: int | None = None
        self.accepted = 0
        self.resets = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        """``host:port`` where the proxy listens (after :meth:`start`)."""
        if self.port is None:
            raise RuntimeError("the FaultProxy is not started")
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on a free port of :attr:`host`."""
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close every connection; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take_reset(self) -> int | None:
        if self.reset_after is None or self.resets_left == 0:
            return None
        if self.resets_left is not None:
            self.resets_left -= 1
        return self.reset_after

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            if self.blackhole or self.upstream is None:
                while await reader.read(65536):
                    pass
                return
            limit = self._take_reset()
            up_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(upstream_writer)
            to_server = asyncio.ensure_future(_pump(reader, upstream_writer, None))
            try:
                reached = await _pump(up_reader, writer, limit)
            finally:
                to_server.cancel()
                await asyncio.gather(to_server, return_exceptions=True)
            if reached:
                self.resets += 1
                _reset(writer)
                _reset(upstream_writer)
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()

    def __repr__(self) -> str:
        return (
            f"FaultProxy(upstream={self.upstream!r}, port={self.port}, "
            f"reset_after={self.reset_after}, blackhole={self.blackhole})"
        )


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None
) -> bool:
    """Copy ``reader`` to ``writer`` until EOF (False) or ``limit`` bytes were passed (True)."""
    passed = 0
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
            return False
        if limit is not None and passed + len(chunk) >= limit:
            writer.write(chunk[: limit - passed])
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            return True
        passed += len(chunk)
        writer.write(chunk)
        await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (linger 0) instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
