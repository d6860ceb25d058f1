"""Batching settings (:class:`Batching`) and the plain numbers it reports (:class:`BatchEvent`,
:class:`BatchingStats`).

Imported by the client and by the batcher alike, so neither imports the other.

>>> b = Batching(max_batch_size=32, models={"bert": Batching(max_batch_size=8), "tiny": None})
>>> b.for_model("bert").max_batch_size, b.for_model("resnet").max_batch_size, b.for_model("tiny")
(8, 32, None)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["BatchEvent", "Batching", "BatchingStats", "FlushReason"]

#: Why a batch was sent: ``"idle"`` nothing of its group was in flight (a call
#: arriving then is sent at once, and a waiting batch goes as soon as the group
#: falls idle), ``"size"`` it reached ``max_batch_size`` rows, ``"delay"`` its first
#: call waited ``max_delay``, ``"close"`` the client was closing, ``"isolation"``
#: part of a failed batch sent again to find the rows the server refused,
#: ``"alone"`` a caller sent again on its own because the signature turned out
#: not to be batch-major.
FlushReason = Literal["idle", "size", "delay", "close", "isolation", "alone"]


@dataclass(frozen=True)
class BatchEvent:
    """One request the batcher sent (what an ``observer`` receives), as plain numbers.

    Attributes:
        model: the model's name.
        rows: rows in the request (dimension 0).
        callers: callers whose rows it carries.
        reason: why it was sent (:data:`FlushReason`).
        queue_delay: seconds its oldest caller waited in the queue before it was sent.
        in_flight: requests of its group in flight, this one included.
    """

    model: str
    rows: int
    callers: int
    reason: FlushReason
    queue_delay: float
    in_flight: int


@dataclass
class BatchingStats:
    """Counters of a client's batcher since it was created (a snapshot: plain numbers).

    Attributes:
        batches: requests sent by the batcher (isolation and ``alone`` ones included).
        rows: rows in them.
        callers: caller shares in them (a caller sent again counts again).
        flushes: requests sent, by :data:`FlushReason`.
        batch_rows: requests sent, by their number of rows.
        queue_delay_total / queue_delay_max: seconds callers waited before their
            rows were sent (the oldest caller of each request).
        isolation_splits: failed requests split in two to find the refused rows.
        isolated_errors: callers failed on their own by isolation.
        unbatchable: signatures found not batch-major (then sent one call at a time).
        rejected: calls refused at once because their queue was full (``when_full="raise"``).
        queued / in_flight: calls waiting and requests in flight now.
    """

    batches: int = 0
    rows: int = 0
    callers: int = 0
    flushes: dict[str, int] = field(default_factory=dict)
    batch_rows: dict[int, int] = field(default_factory=dict)
    queue_delay_total: float = 0.0
    queue_delay_max: float = 0.0
    isolation_splits: int = 0
    isolated_errors: int = 0
    unbatchable: int = 0
    rejected: int = 0
    queued: int = 0
    in_flight: int = 0

    @property
    def mean_batch_rows(self) -> float:
        """Rows per request sent (0 before the first)."""
        return self.rows / self.batches if self.batches else 0.0

    @property
    def mean_queue_delay(self) -> float:
        """Seconds a request's oldest caller waited, on average (0 before the first)."""
        return self.queue_delay_total / self.batches if self.batches else 0.0


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Batching.{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"Batching.{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class Batching:
    """Transparent micro-batching of concurrent ``predict`` calls (``Client(batching=...)``).

    Calls that can be merged (same model, version or label, signature, output
    filter and call options; same input names, dtypes and shapes after dimension
    0) are concatenated along dimension 0 into one request and every caller gets
    its own rows back. A call arriving when nothing of its group is in flight is
    sent at once, so batching costs nothing at low load; calls wait (at most
    ``max_delay``) only while their group is busy.

    Attributes:
        max_batch_size: most rows in one request; a call with more rows is sent alone.
        max_delay: seconds a batch waits for more calls while its group is busy.
        max_queue: most calls waiting per group (not yet sent); beyond it
            callers wait for room, or fail at once with
            :class:`~tfs_async.batching.BatchQueueFullError` if ``when_full="raise"``.
        max_in_flight: most requests in flight per group; full batches wait for a slot.
        when_full: ``"wait"`` or ``"raise"`` when a group's queue is full.
        max_isolation_requests: when a merged request fails with INVALID_ARGUMENT
            or FAILED_PRECONDITION, it is split in halves and sent again until the
            callers at fault are found (at most ``2 * callers - 2`` more requests);
            this caps those requests per failed batch (``None``: no cap, ``0``:
            no isolation: every caller gets the error). Callers left undecided
            when the cap is reached get the error.
        observer: called with a :class:`BatchEvent` for every request sent (keep
            it fast; its exceptions are logged and ignored).
        models: per-model settings by model name; ``None`` turns batching off for
            that model. The entries take no ``models`` of their own.
    """

    max_batch_size: int = 64
    max_delay: float = 0.002
    max_queue: int = 4096
    max_in_flight: int = 8
    when_full: Literal["wait", "raise"] = "wait"
    max_isolation_requests: int | None = None
    observer: Callable[[BatchEvent], None] | None = None
    models: Mapping[str, Batching | None] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _check_int("max_batch_size", self.max_batch_size, 1)
        _check_int("max_queue", self.max_queue, 1)
        _check_int("max_in_flight", self.max_in_flight, 1)
        if self.max_isolation_requests is not None:
            _check_int("max_isolation_requests", self.max_isolation_requests, 0)
        if isinstance(self.max_delay, bool) or not isinstance(self.max_delay, (int, float)):
            raise TypeError(f"Batching.max_delay must be seconds (float), got {self.max_delay!r}")
        if not (math.isfinite(self.max_delay) and self.max_delay >= 0):
            raise ValueError(f"Batching.max_delay must be >= 0 seconds, got {self.max_delay!r}")
        if self.when_full not in ("wait", "raise"):
            raise ValueError(
                f"Batching.when_full must be 'wait' or 'raise', got {self.when_full!r}"
            )
        if self.observer is not None and not callable(self.observer):
            raise TypeError(f"Batching.observer must be callable, got {self.observer!r}")
        if not isinstance(self.models, Mapping):
            raise TypeError(
                f"Batching.models must map model names to Batching or None, got {self.models!r}"
            )
        for name, entry in self.models.items():
            if entry is not None and not isinstance(entry, Batching):
                raise TypeError(
                    f"Batching.models[{name!r}] must be a Batching or None, got {entry!r}"
                )
            if entry is not None and entry.models:
                raise ValueError(f"Batching.models[{name!r}] cannot have models of its own")
        # A private copy: the caller's dict may change later.
        object.__setattr__(self, "models", dict(self.models))
        # Hashed on every batched call (it is part of the group's key): once is enough.
        object.__setattr__(
            self,
            "_hash",
            hash(
                (
                    self.max_batch_size,
                    self.max_delay,
                    self.max_queue,
                    self.max_in_flight,
                    self.when_full,
                    self.max_isolation_requests,
                    self.observer,
                )
            ),
        )

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]

    def for_model(self, name: str) -> Batching | None:
        """The settings for model ``name``: its entry in :attr:`models`, else these."""
        return self.models.get(name, self) if self.models else self
