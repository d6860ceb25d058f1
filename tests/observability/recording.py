"""An observer that writes down every event, and the target of a listener pair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.harness import Listeners
from tfs_async.observe import (
    AttemptInfo,
    BatchFlush,
    CallInfo,
    Observer,
    PoolWait,
    RetryScheduled,
)


def target(protocol: str, where: Listeners) -> str:
    """The client target of ``where`` over ``protocol``."""
    if protocol == "grpc":
        return f"grpc://127.0.0.1:{where.grpc_port}"
    return f"http://127.0.0.1:{where.rest_port}"


def predicts(seen: list[dict[str, str]]) -> list[dict[str, str]]:
    """The Predict requests the server saw (REST also fetches metadata first)."""
    return [h for h in seen if h[":path"].lower().endswith("predict")]


class Recorder(Observer):
    """Keeps ``(event name, details)`` in order; tags each attempt with ``x-attempt``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def names(self, method: str | None = None) -> list[str]:
        """The event names, for one method's calls only when ``method`` is given."""
        return [
            name
            for name, detail in self.events
            if method is None or getattr(detail, "method", method) == method
        ]

    def call_started(self, call: CallInfo) -> None:
        self.events.append(("call_started", call))

    def call_ended(self, call: CallInfo, error: BaseException | None) -> None:
        self.events.append(("call_ended", _Ended(call.method, call, error)))

    def attempt_started(self, attempt: AttemptInfo) -> None:
        attempt.metadata.append(("x-attempt", str(attempt.number)))
        self.events.append(("attempt_started", _Attempt(attempt.call.method, attempt, None)))

    def attempt_ended(self, attempt: AttemptInfo, error: BaseException | None) -> None:
        self.events.append(("attempt_ended", _Attempt(attempt.call.method, attempt, error)))

    def retry_scheduled(self, event: RetryScheduled) -> None:
        method = event.call.method if event.call is not None else None
        self.events.append(("retry_scheduled", _Retry(method, event)))

    def budget_exhausted(self, call: CallInfo | None, error: BaseException) -> None:
        method = call.method if call is not None else None
        self.events.append(("budget_exhausted", _Ended(method, call, error)))

    def pool_wait(self, event: PoolWait) -> None:
        self.events.append(("pool_wait", event))

    def batch_flushed(self, event: BatchFlush) -> None:
        self.events.append(("batch_flushed", event))

    def of(self, name: str) -> list[Any]:
        """The details of every event called ``name``."""
        return [detail for n, detail in self.events if n == name]


@dataclass
class _Ended:
    method: str | None
    call: CallInfo | None
    error: BaseException | None


@dataclass
class _Attempt:
    method: str
    attempt: AttemptInfo
    error: BaseException | None


@dataclass
class _Retry:
    method: str | None
    event: RetryScheduled
