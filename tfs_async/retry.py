"""Retries: which failures are retried, how long to wait, and when to give up.

The rules, in one place (:func:`is_retryable` and :meth:`RetryPolicy.should_stop`):

* retried: UNAVAILABLE / HTTP 503 (this includes connection failures) and
  RESOURCE_EXHAUSTED / HTTP 429; NOT_FOUND only when ``retry_loading=True``
  (TF Serving answers NOT_FOUND while a version loads), at most
  ``max_loading_retries`` times;
* never retried: everything else, notably INVALID_ARGUMENT and FAILED_PRECONDITION;
* waits: exponential backoff with jitter, capped (:func:`backoff_delay`, also used by
  ``Client.wait_until_available`` between its polls);
* one deadline covers every attempt: each attempt gets the time that is left,
  and no retry is started when its backoff plus the fastest attempt seen so far
  would overrun the deadline;
* a retry budget (:class:`RetryBudget`) lets retries be at most a fraction of
  recent requests, so a failing server is not hammered.

The first attempt runs outside tenacity (it is the hot path); once it fails with a
retryable error, tenacity's ``AsyncRetrying`` drives the retries.

>>> from tfs_async.errors import UnavailableError, InvalidArgumentError
>>> policy = RetryPolicy()
>>> is_retryable(UnavailableError("down"), policy), is_retryable(InvalidArgumentError("x"), policy)
(True, False)
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from tfs_async.errors import (
    DeadlineExceededError,
    NotFoundError,
    ResourceExhaustedError,
    TFServingError,
    UnavailableError,
    with_attempts,
)
from tfs_async.observe import CallInfo, Observer, RetryScheduled, get_logger
from tfs_async.types import ModelSpec

__all__ = ["RetryBudget", "RetryPolicy", "backoff_delay", "call_with_retries", "is_retryable"]

T = TypeVar("T")

_log = get_logger("retry")


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry a failed call (the number of retries is the client's ``max_retries``).

    Attributes:
        initial_backoff: seconds before the first retry (before jitter).
        max_backoff: the longest wait between two attempts.
        multiplier: growth of the wait per retry.
        jitter: up to this many seconds are added at random to each wait.
        retry_loading: also retry NOT_FOUND, which TF Serving answers while a
            version is still loading (hot reload). Off by default: an unknown
            model is NOT_FOUND too.
        max_loading_retries: at most this many NOT_FOUND retries per call.
        budget_ratio: retries may be at most this fraction of recent requests.
        budget_min_retries: retries always allowed before the ratio applies.
    """

    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.05
    retry_loading: bool = False
    max_loading_retries: int = 5
    budget_ratio: float = 0.2
    budget_min_retries: int = 10

    def __post_init__(self) -> None:
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.jitter < 0:
            raise ValueError("backoff and jitter must be >= 0")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.budget_ratio <= 1:
            raise ValueError("budget_ratio must be within [0, 1]")


def backoff_delay(
    retry: int,
    *,
    initial: float,
    maximum: float,
    multiplier: float = 2.0,
    jitter: float = 0.0,
) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first).

    Exponential from ``initial`` (``initial * multiplier ** (retry - 1)``), capped
    at ``maximum``, plus up to ``jitter`` seconds at random so that clients failing
    together do not come back together.

    >>> [backoff_delay(n, initial=0.05, maximum=0.3) for n in (1, 2, 3, 4, 5)]
    [0.05, 0.1, 0.2, 0.3, 0.3]
    >>> 0.05 <= backoff_delay(1, initial=0.05, maximum=2.0, jitter=0.05) <= 0.1
    True
    """
    try:
        delay = min(initial * multiplier ** (retry - 1), maximum)
    except OverflowError:  # a long wait loop with a large multiplier
        delay = maximum
    return delay + jitter * random.random() if jitter > 0 else delay


def is_retryable(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``error`` may be retried under ``policy`` (the rules of this module)."""
    if isinstance(error, (UnavailableError, ResourceExhaustedError)):
        return True
    return policy.retry_loading and isinstance(error, NotFoundError)


class RetryBudget:
    """A token bucket capping retries at a fraction of recent requests.

    Each request deposits ``ratio`` tokens, each retry withdraws one; the bucket
    starts with ``min_retries`` tokens and holds at most ``min_retries + ratio *
    window`` of them, so old successes cannot pay for a burst of retries.
    Shared by every call of a client (and its ``with_options`` copies).

    >>> budget = RetryBudget(ratio=0.5, min_retries=1)
    >>> budget.try_withdraw(), budget.try_withdraw()
    (True, False)
    >>> budget.deposit(); budget.deposit(); budget.try_withdraw()
    True
    """

    def __init__(self, ratio: float = 0.2, min_retries: int = 10, window: int = 1000) -> None:
        self.ratio = ratio
        self._cap = min_retries + ratio * window
        self._tokens = float(min_retries)

    def deposit(self) -> None:
        """Record one request."""
        tokens = self._tokens + self.ratio
        self._tokens = tokens if tokens < self._cap else self._cap

    def try_withdraw(self) -> bool:
        """Take a token for one retry; False when the budget is spent."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def tokens(self) -> float:
        """Tokens left (one per retry)."""
        return self._tokens


class _RetryState:
    """What the stop rule needs to know about one call."""

    def __init__(
        self,
        deadline: float | None,
        max_retries: int,
        observer: Observer | None = None,
        call: CallInfo | None = None,
    ) -> None:
        self.observer = observer
        self.call = call
        self.deadline = deadline
        self.max_retries = max_retries
        self.fastest_attempt = float("inf")
        self.loading_retries = 0
        self.errors: list[TFServingError] = []


def _should_stop(
    retry_state: RetryCallState, state: _RetryState, policy: RetryPolicy, budget: RetryBudget
) -> bool:
    """The stop rule: out of retries, out of time, out of loading retries, or out of budget."""
    if retry_state.attempt_number > state.max_retries:
        return True
    if state.deadline is not None:
        left = state.deadline - time.monotonic()
        # No attempt starts that cannot finish before the deadline.
        if retry_state.upcoming_sleep + min(state.fastest_attempt, left) >= left:
            return True
    last = state.errors[-1] if state.errors else None
    if isinstance(last, NotFoundError):
        if state.loading_retries >= policy.max_loading_retries:
            return True
        state.loading_retries += 1
    if budget.try_withdraw():
        _retry_scheduled(retry_state, state)
        return False
    _log.debug("retry budget spent (%.2f tokens): not retrying %s", budget.tokens, _what(last))
    if state.observer is not None and last is not None:
        state.observer.budget_exhausted(state.call, last)
    return True


def _what(error: TFServingError | None) -> str:
    """An error as logs show it: its class, code and model, never a payload."""
    if error is None:
        return "the call"
    return f"{type(error).__name__} ({error.code.name}) from model {error.model}"


def _retry_scheduled(retry_state: RetryCallState, state: _RetryState) -> None:
    delay, number = retry_state.upcoming_sleep, retry_state.attempt_number + 1
    last = state.errors[-1] if state.errors else None
    _log.debug("retrying %s: attempt %d in %.3f s", _what(last), number, delay)
    if state.observer is not None and last is not None:
        state.observer.retry_scheduled(RetryScheduled(state.call, number, delay, last))


def _name_model(error: TFServingError, model: ModelSpec | None) -> None:
    # Errors raised below the client (codecs, transports) may not know the model.
    if error.model is None:
        error.model = model


def _remaining(deadline: float | None, model: ModelSpec | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceededError("the call's deadline passed before the attempt", model=model)
    return left


async def call_with_retries(
    attempt: Callable[[float | None], Awaitable[T]],
    *,
    timeout: float | None,
    max_retries: int,
    policy: RetryPolicy,
    budget: RetryBudget,
    model: ModelSpec | None = None,
    observer: Observer | None = None,
    call: CallInfo | None = None,
) -> T:
    """Run ``attempt(timeout_left)`` until it succeeds or the rules say stop.

    ``attempt`` receives the seconds left before the call's deadline (``None``
    for no deadline) and must finish within them. The error raised at the end
    carries ``attempts``, ``previous`` (earlier errors, oldest first) and, as
    ``__cause__``, the error of the attempt before it. ``observer`` (with the
    ``call`` it concerns) is told of each retry and each budget refusal.
    """
    budget.deposit()
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()
    try:
        return await attempt(_remaining(deadline, model))
    except TFServingError as error:
        _name_model(error, model)
        if max_retries <= 0 or not is_retryable(error, policy):
            raise
        state = _RetryState(deadline, max_retries, observer, call)
        state.fastest_attempt = time.monotonic() - started
        state.errors.append(error)
    return await _retry(attempt, state, policy, budget, model)


async def _retry(
    attempt: Callable[[float | None], Awaitable[T]],
    state: _RetryState,
    policy: RetryPolicy,
    budget: RetryBudget,
    model: ModelSpec | None,
) -> T:
    first_failure: list[TFServingError] = [state.errors[0]]
    retrying = AsyncRetrying(
        stop=lambda rs: _should_stop(rs, state, policy, budget),
        wait=lambda rs: backoff_delay(
            rs.attempt_number,
            initial=policy.initial_backoff,
            maximum=policy.max_backoff,
            multiplier=policy.multiplier,
            jitter=policy.jitter,
        ),
        retry=retry_if_exception(lambda e: is_retryable(e, policy)),
        reraise=True,
    )
    try:
        async for try_ in retrying:
            with try_:
                if first_failure:
                    # Attempt 1 already ran on the fast path: replay its outcome.
                    raise first_failure.pop()
                started = time.monotonic()
                try:
                    return await attempt(_remaining(state.deadline, model))
                except TFServingError as error:
                    state.errors.append(error)
                    raise
                finally:
                    state.fastest_attempt = min(state.fastest_attempt, time.monotonic() - started)
    except TFServingError as final:
        _name_model(final, model)
        previous = [e for e in state.errors if e is not final]
        with_attempts(final, len(state.errors), previous)
        if previous:
            raise final from previous[-1]
        raise
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
