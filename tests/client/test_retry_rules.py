"""Retry rules: what is retried, how often, within which deadline and budget."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.client import within
from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    TFServingError,
    UnavailableError,
)
from tfs_async.retry import (
    RetryBudget,
    RetryPolicy,
    backoff_delay,
    call_with_retries,
    is_retryable,
)

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.002, jitter=0.0)


class Script:
    """An attempt function failing with the given errors, then answering "ok"."""

    def __init__(self, *errors: TFServingError) -> None:
        self.errors = list(errors)
        self.timeouts: list[float | None] = []

    async def __call__(self, timeout: float | None) -> str:
        self.timeouts.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def run(
    script: Script,
    *,
    policy: RetryPolicy = FAST,
    max_retries: int = 3,
    timeout: float | None = None,
    budget: RetryBudget | None = None,
) -> str:
    async with within(10):
        return await call_with_retries(
            script,
            timeout=timeout,
            max_retries=max_retries,
            policy=policy,
            budget=budget or RetryBudget(),
        )


@pytest.mark.parametrize(
    "error",
    [UnavailableError("down"), ResourceExhaustedError("queue full"), ConnectionFailedError("x")],
    ids=["unavailable", "resource_exhausted", "connection_failed"],
)
async def test_transient_failures_are_retried_until_success(error: TFServingError) -> None:
    script = Script(error, error)
    assert await run(script) == "ok"
    assert len(script.timeouts) == 3


@pytest.mark.parametrize(
    "error",
    [InvalidArgumentError("bad"), FailedPreconditionError("sig"), NotFoundError("nope")],
    ids=["invalid_argument", "failed_precondition", "not_found_by_default"],
)
async def test_permanent_failures_are_not_retried(error: TFServingError) -> None:
    script = Script(error)
    with pytest.raises(type(error)) as raised:
        await run(script)
    assert len(script.timeouts) == 1
    assert raised.value.attempts == 1
    assert raised.value.previous == ()


async def test_exhausted_retries_raise_the_last_error_with_history() -> None:
    errors = [UnavailableError(f"down {i}") for i in range(3)]
    script = Script(*errors)
    with pytest.raises(UnavailableError) as raised:
        await run(script, max_retries=2)
    final = raised.value
    assert final is errors[2]
    assert final.attempts == 3
    assert final.previous == (errors[0], errors[1])
    assert final.__cause__ is errors[1]
    assert "after 3 attempts" in str(final)


async def test_not_found_is_retried_only_when_asked_and_boundedly() -> None:
    loading = RetryPolicy(
        initial_backoff=0.001, jitter=0.0, retry_loading=True, max_loading_retries=2
    )
    assert await run(Script(NotFoundError("loading")), policy=loading) == "ok"
    script = Script(*[NotFoundError("loading") for _ in range(5)])
    with pytest.raises(NotFoundError) as raised:
        await run(script, policy=loading, max_retries=10)
    assert raised.value.attempts == 3  # the first attempt and two loading retries


async def test_max_retries_zero_means_one_attempt() -> None:
    script = Script(UnavailableError("down"))
    with pytest.raises(UnavailableError):
        await run(script, max_retries=0)
    assert len(script.timeouts) == 1


async def test_each_attempt_gets_the_time_left() -> None:
    script = Script(UnavailableError("a"), UnavailableError("b"))
    assert await run(script, timeout=5.0) == "ok"
    first, second, third = script.timeouts
    assert first is not None
    assert second is not None
    assert third is not None
    assert 5.0 >= first > second > third > 0


async def test_no_retry_starts_when_its_backoff_would_overrun_the_deadline() -> None:
    slow = RetryPolicy(initial_backoff=5.0, max_backoff=5.0, jitter=0.0)
    script = Script(UnavailableError("down"))
    started = time.monotonic()
    with pytest.raises(UnavailableError) as raised:
        await run(script, policy=slow, timeout=1.0)
    assert len(script.timeouts) == 1
    assert raised.value.attempts == 1
    assert time.monotonic() - started < 1.0  # gave up at once instead of sleeping


async def test_retry_budget_stops_retries_when_spent() -> None:
    budget = RetryBudget(ratio=0.0, min_retries=2)
    script = Script(*[UnavailableError("down") for _ in range(10)])
    with pytest.raises(UnavailableError) as raised:
        await run(script, max_retries=10, budget=budget)
    assert raised.value.attempts == 3  # two retries paid from the budget
    script = Script(UnavailableError("down"))
    with pytest.raises(UnavailableError):
        await run(script, max_retries=10, budget=budget)
    assert len(script.timeouts) == 1  # nothing left: no retry at all


@given(requests=st.integers(0, 2000), ratio=st.floats(0.0, 1.0), minimum=st.integers(0, 50))
@settings(max_examples=50, deadline=None)
def test_budget_allows_at_most_ratio_of_requests_plus_minimum(
    requests: int, ratio: float, minimum: int
) -> None:
    budget = RetryBudget(ratio=ratio, min_retries=minimum)
    for _ in range(requests):
        budget.deposit()
    allowed = 0
    while budget.try_withdraw():
        allowed += 1
        assert allowed <= requests + minimum + 1  # bounded loop
    assert allowed <= minimum + ratio * requests + 1e-9


def test_retry_rules() -> None:
    policy = RetryPolicy()
    assert is_retryable(ConnectionFailedError("refused"), policy)
    assert not is_retryable(DeadlineExceededError("late"), policy)
    assert not is_retryable(NotFoundError("loading"), policy)
    assert is_retryable(NotFoundError("loading"), RetryPolicy(retry_loading=True))
    with pytest.raises(ValueError, match="budget_ratio"):
        RetryPolicy(budget_ratio=2.0)


@settings(max_examples=200)
@given(
    retry=st.integers(1, 2000),
    initial=st.floats(0.0, 5.0),
    maximum=st.floats(0.0, 30.0),
    multiplier=st.floats(1.0, 1e6),
    jitter=st.floats(0.0, 2.0),
)
def test_backoff_grows_from_initial_is_capped_and_jitters_within_bounds(
    retry: int, initial: float, maximum: float, multiplier: float, jitter: float
) -> None:
    def delay(n: int, extra: float = 0.0) -> float:
        return backoff_delay(
            n, initial=initial, maximum=maximum, multiplier=multiplier, jitter=extra
        )

    base = delay(retry)
    assert base <= maximum
    assert delay(1) == min(initial, maximum)
    assert delay(retry + 1) >= base  # never shrinks
    assert base <= delay(retry, jitter) <= base + jitter
