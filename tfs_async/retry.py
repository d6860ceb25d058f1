"""Retries: which failures are retried, how long to wait, and when to give up.

The rules, in one place (:func:`is_retryable`, :func:`is_requeue` and the stop rule):

* **not sent** (:class:`~tfs_async.errors.NotSentError`: connection refused or
  unreachable, name not resolved, no ready subchannel): nothing reached a server,
  so re-sending cannot duplicate work. With ``wait_for_ready`` (the default) the
  call waits for a server within its own deadline and is re-sent once one is
  back (a *requeue*): not counted against ``max_retries`` nor charged to the
  retry budget. The deadline passing while waiting raises DeadlineExceededError.
  With ``wait_for_ready=False`` such a failure is an ordinary UNAVAILABLE.
* **maybe sent**, retried by the policy (idempotent calls only; every TF Serving
  call is): UNAVAILABLE / HTTP 503 (this includes connections lost after the
  request was written) and RESOURCE_EXHAUSTED / HTTP 429; NOT_FOUND only when
  ``retry_loading=True`` (TF Serving answers NOT_FOUND while a version loads),
  at most ``max_loading_retries`` times;
* never retried: everything else, notably INVALID_ARGUMENT, FAILED_PRECONDITION
  and :class:`~tfs_async.errors.MessageTooLargeError` (deterministic: the same
  message fails the same way);
* waits: exponential backoff with jitter, capped (:func:`backoff_delay`, also used by
  ``Client.wait_until_available`` between its polls); a server's hint
  (``grpc-retry-pushback-ms``, HTTP ``Retry-After`` on 429/503) replaces the
  backoff when it is at most ``max_retry_after`` seconds;
* one deadline covers every attempt: each attempt gets the time that is left,
  and no retry is started when its wait plus the fastest attempt seen so far
  would overrun the deadline (a hint longer than the time left ends the call);
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

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from tfs_async.errors import (
    DeadlineExceededError,
    MessageTooLargeError,
    NotFoundError,
    NotSentError,
    ResourceExhaustedError,
    TFServingError,
    UnavailableError,
    with_attempts,
)
from tfs_async.observe import CallInfo, Observer, RetryScheduled, get_logger
from tfs_async.types import ModelSpec

__all__ = [
    "RetryBudget",
    "RetryPolicy",
    "backoff_delay",
    "call_with_retries",
    "is_requeue",
    "is_retryable",
]

T = TypeVar("T")

#: ``wait_for_server(timeout)``: wait until a server looks reachable (True) or
#: ``timeout`` seconds passed / the transport cannot tell (False).
WaitForServer = Callable[[float | None], Awaitable[bool]]

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
        max_retry_after: a server's retry hint (``grpc-retry-pushback-ms``,
            ``Retry-After``) up to this many seconds replaces the backoff; a
            longer one is ignored (the backoff applies).
        requeue_initial_backoff: first wait before re-sending a call that reached
            no server (``wait_for_ready``); grows to ``requeue_max_backoff``.
        requeue_max_backoff: the longest wait between two such re-sends, so a
            restarted server is found within about this long.
    """

    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.05
    retry_loading: bool = False
    max_loading_retries: int = 5
    budget_ratio: float = 0.2
    budget_min_retries: int = 10
    max_retry_after: float = 30.0
    requeue_initial_backoff: float = 0.02
    requeue_max_backoff: float = 0.25

    def __post_init__(self) -> None:
        if min(self.initial_backoff, self.max_backoff, self.jitter) < 0:
            raise ValueError("backoff and jitter must be >= 0")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.budget_ratio <= 1:
            raise ValueError("budget_ratio must be within [0, 1]")
        if self.max_loading_retries < 0 or self.budget_min_retries < 0:
            raise ValueError("max_loading_retries and budget_min_retries must be >= 0")
        if self.max_retry_after < 0:
            raise ValueError(f"max_retry_after must be >= 0, got {self.max_retry_after!r}")
        if self.requeue_initial_backoff <= 0 or self.requeue_max_backoff <= 0:
            raise ValueError("requeue_initial_backoff and requeue_max_backoff must be > 0")


def backoff_delay(
    retry: int,
    *,
    initial: float,
    maximum: float,
    multiplier: float = 2.0,
    jitter: float = 0.0,
    hint: float | None = None,
    max_hint: float | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first).

    Exponential from ``initial`` (``initial * multiplier ** (retry - 1)``), capped
    at ``maximum``, plus up to ``jitter`` seconds at random so that clients failing
    together do not come back together.

    ``hint`` is the server's own answer to the question (``Retry-After``,
    ``grpc-retry-pushback-ms``): when it is within ``[0, max_hint]`` it is the
    wait, as is; a larger (or negative) one is ignored.

    >>> [backoff_delay(n, initial=0.05, maximum=0.3) for n in (1, 2, 3, 4, 5)]
    [0.05, 0.1, 0.2, 0.3, 0.3]
    >>> 0.05 <= backoff_delay(1, initial=0.05, maximum=2.0, jitter=0.05) <= 0.1
    True
    >>> backoff_delay(1, initial=0.05, maximum=2.0, hint=1.5, max_hint=30.0)
    1.5
    >>> backoff_delay(1, initial=0.05, maximum=2.0, hint=3600.0, max_hint=30.0)
    0.05
    """
    if hint is not None and 0 <= hint <= (max_hint if max_hint is not None else hint):
        return hint
    try:
        delay = min(initial * multiplier ** (retry - 1), maximum)
    except OverflowError:  # a long wait loop with a large multiplier
        delay = maximum
    return delay + jitter * random.random() if jitter > 0 else delay


def is_retryable(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``error`` may be retried under ``policy`` (the rules of this module)."""
    if isinstance(error, MessageTooLargeError):
        return False
    if isinstance(error, (UnavailableError, ResourceExhaustedError)):
        return True
    return policy.retry_loading and isinstance(error, NotFoundError)


def is_requeue(error: BaseException, wait_for_ready: bool) -> bool:
    """Whether ``error`` is re-sent for free: it reached no server and the call waits for one.

    >>> is_requeue(NotSentError("connection refused"), True)
    True
    >>> is_requeue(NotSentError("connection refused"), False)
    False
    """
    return wait_for_ready and isinstance(error, NotSentError)


class RetryBudget:
    """A token bucket capping retries at a fraction of recent requests.

    Each request deposits ``ratio`` tokens, each retry withdraws one; the bucket
    starts with ``min_retries`` tokens and holds at most ``min_retries + ratio *
    window`` of them, so old successes cannot pay for a burst of retries.
    Shared by every call of a client (and its ``with_options`` copies). Re-sends
    of calls that reached no server (requeues) withdraw nothing.

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
    """What the stop and wait rules need to know about one call."""

    def __init__(
        self,
        deadline: float | None,
        max_retries: int,
        wait_for_ready: bool,
        idempotent: bool,
        observer: Observer | None = None,
        call: CallInfo | None = None,
    ) -> None:
        self.observer = observer
        self.call = call
        self.deadline = deadline
        self.max_retries = max_retries
        self.wait_for_ready = wait_for_ready
        self.idempotent = idempotent
        self.fastest_attempt = float("inf")
        self.loading_retries = 0
        self.retries = 0
        self.requeues = 0
        self.out_of_time = False
        self.errors: list[TFServingError] = []

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


def _retryable(error: BaseException, state: _RetryState, policy: RetryPolicy) -> bool:
    if is_requeue(error, state.wait_for_ready):
        return True
    if isinstance(error, NotSentError):
        return is_retryable(error, policy)
    return state.idempotent and is_retryable(error, policy)


def _should_stop(
    retry_state: RetryCallState, state: _RetryState, policy: RetryPolicy, budget: RetryBudget
) -> bool:
    """The stop rule: out of time; then, for retries: out of retries or budget."""
    last = state.errors[-1] if state.errors else None
    requeue = last is not None and is_requeue(last, state.wait_for_ready)
    left = state.left()
    if left is not None:
        if requeue:
            # Waiting for a server: any time left is worth a re-send.
            if left <= 0:
                state.out_of_time = True
                return True
        elif retry_state.upcoming_sleep + min(state.fastest_attempt, left) >= left:
            # No attempt starts that cannot finish before the deadline.
            return True
    if requeue:
        state.requeues += 1
        _log.debug("re-sending %s once a server is reachable: it reached none", _what(last))
        return False
    if state.retries >= state.max_retries:
        return True
    if isinstance(last, NotFoundError):
        if state.loading_retries >= policy.max_loading_retries:
            return True
        state.loading_retries += 1
    if budget.try_withdraw():
        state.retries += 1
        _retry_scheduled(retry_state, state)
        return False
    _log.debug("retry budget spent (%.2f tokens): not retrying %s", budget.tokens, _what(last))
    if state.observer is not None and last is not None:
        state.observer.budget_exhausted(state.call, last)
    return True


def _wait(state: _RetryState, policy: RetryPolicy) -> float:
    """Seconds before the next attempt: the requeue backoff, the server's hint or the backoff."""
    last = state.errors[-1]
    if is_requeue(last, state.wait_for_ready):
        delay = backoff_delay(
            state.requeues + 1,
            initial=policy.requeue_initial_backoff,
            maximum=policy.requeue_max_backoff,
            multiplier=2.0,
        )
        # Full jitter within [delay/2, delay]: callers do not come back together.
        delay = delay * (0.5 + 0.5 * random.random())
        left = state.left()
        return delay if left is None else max(min(delay, left), 0.0)
    return backoff_delay(
        state.retries + 1,
        initial=policy.initial_backoff,
        maximum=policy.max_backoff,
        multiplier=policy.multiplier,
        jitter=policy.jitter,
        hint=last.retry_after,
        max_hint=policy.max_retry_after,
    )


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


def _waited_in_vain(final: TFServingError, state: _RetryState) -> NotSentError | None:
    """The connection failure of a call whose deadline passed while waiting for a server."""
    if not state.wait_for_ready:
        return None
    if isinstance(final, NotSentError) and state.out_of_time:
        return final
    before = state.errors[-2] if len(state.errors) >= 2 else None
    if (
        isinstance(final, DeadlineExceededError)
        and state.out_of_time
        and isinstance(before, NotSentError)
    ):
        return before
    return None


async def call_with_retries(
    attempt: Callable[[float | None], Awaitable[T]],
    *,
    timeout: float | None,
    max_retries: int,
    policy: RetryPolicy,
    budget: RetryBudget,
    model: ModelSpec | None = None,
    wait_for_ready: bool = False,
    wait_for_server: WaitForServer | None = None,
    idempotent: bool = True,
    observer: Observer | None = None,
    call: CallInfo | None = None,
) -> T:
    """Run ``attempt(timeout_left)`` until it succeeds or the rules say stop.

    ``attempt`` receives the seconds left before the call's deadline (``None``
    for no deadline) and must finish within them. With ``wait_for_ready``, an
    attempt that reached no server (:class:`~tfs_async.errors.NotSentError`) is
    re-sent once ``wait_for_server`` (the transport's, if any) says a server is
    reachable or after a short jittered backoff, until the deadline; such
    re-sends are free. ``idempotent=False`` retries only what reached no server.
    The error raised at the end carries ``attempts``, ``previous`` (earlier
    errors, oldest first) and, as ``__cause__``, the error of the attempt before it.
    ``observer`` (with the ``call`` it concerns) is told of each retry and each
    budget refusal.
    """
    budget.deposit()
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()
    try:
        return await attempt(_remaining(deadline, model))
    except TFServingError as error:
        _name_model(error, model)
        state = _RetryState(deadline, max_retries, wait_for_ready, idempotent, observer, call)
        if not _retryable(error, state, policy) or (
            max_retries <= 0 and not is_requeue(error, wait_for_ready)
        ):
            raise
        state.fastest_attempt = time.monotonic() - started
        state.errors.append(error)
    return await _retry(attempt, state, policy, budget, model, wait_for_server)


async def _retry(
    attempt: Callable[[float | None], Awaitable[T]],
    state: _RetryState,
    policy: RetryPolicy,
    budget: RetryBudget,
    model: ModelSpec | None,
    wait_for_server: WaitForServer | None,
) -> T:
    first_failure: list[TFServingError] = [state.errors[0]]

    async def sleep(seconds: float) -> None:
        last = state.errors[-1]
        if (
            wait_for_server is not None
            and is_requeue(last, state.wait_for_ready)
            and await wait_for_server(state.left())
        ):
            # The transport says its server is back: re-send now (after a few
            # jittered milliseconds, so that a flapping server is not spun on).
            seconds = min(seconds, policy.requeue_initial_backoff) * random.random()
        if seconds > 0:
            await asyncio.sleep(seconds)

    retrying = AsyncRetrying(
        stop=lambda rs: _should_stop(rs, state, policy, budget),
        wait=lambda rs: _wait(state, policy),
        retry=retry_if_exception(lambda e: _retryable(e, state, policy)),
        sleep=sleep,
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
                    left = state.left()
                    if left is not None and left <= 0:
                        state.out_of_time = True
                    return await attempt(_remaining(state.deadline, model))
                except TFServingError as error:
                    state.errors.append(error)
                    raise
                finally:
                    if not (state.errors and isinstance(state.errors[-1], NotSentError)):
                        elapsed = time.monotonic() - started
                        state.fastest_attempt = min(state.fastest_attempt, elapsed)
    except TFServingError as final:
        _name_model(final, model)
        previous = [e for e in state.errors if e is not final]
        unreached = _waited_in_vain(final, state)
        if unreached is not None:
            # Waited for a server for the whole deadline: as gRPC's wait-for-ready says it.
            tried = [e for e in state.errors if e is not final or final is unreached]
            connects = sum(isinstance(e, NotSentError) for e in tried)
            late = DeadlineExceededError(
                f"no server could be reached within the call's deadline "
                f"({connects} attempt{'s' if connects != 1 else ''} to connect); "
                f"last: {unreached.message}",
                model=final.model,
            )
            with_attempts(late, len(tried), tried[:-1])
            raise late from unreached
        with_attempts(final, len(state.errors), previous)
        if previous:
            raise final from previous[-1]
        raise
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
