"""The retry rules for reliability: free re-sends of what reached no server, server hints,
deterministic errors never retried. Driven through ``call_with_retries`` directly."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.client import within
from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    MessageTooLargeError,
    NotSentError,
    ResourceExhaustedError,
    TFServingError,
    UnavailableError,
)
from tfs_async.retry import RetryBudget, RetryPolicy, call_with_retries

FAST = RetryPolicy(
    initial_backoff=0.001,
    max_backoff=0.002,
    jitter=0.0,
    requeue_initial_backoff=0.001,
    requeue_max_backoff=0.002,
)
# A backoff no test could sit through: a call that ends proves something else decided the wait.
GLACIAL = RetryPolicy(initial_backoff=3600.0, max_backoff=3600.0, jitter=0.0)


class Script:
    """An attempt failing with the given errors (``forever``: the last one again), then "ok"."""

    def __init__(self, *errors: TFServingError, forever: bool = False) -> None:
        self.errors = list(errors)
        self.forever = forever
        self.calls = 0

    async def __call__(self, timeout: float | None) -> str:
        self.calls += 1
        if self.errors:
            error = self.errors[0] if self.forever else self.errors.pop(0)
            # A fresh instance per attempt, as a transport raises.
            raise type(error)(error.message) if self.forever else error
        return "ok"


def empty_budget() -> RetryBudget:
    return RetryBudget(ratio=0.0, min_retries=0)


async def test_requeues_are_not_charged_to_the_budget_nor_max_retries() -> None:
    budget = empty_budget()
    script = Script(*(NotSentError("connection refused") for _ in range(5)))
    async with within(10):
        result = await call_with_retries(
            script, timeout=5.0, max_retries=0, policy=FAST, budget=budget, wait_for_ready=True
        )
    assert result == "ok"
    assert script.calls == 6
    assert budget.tokens == 0


async def test_without_wait_for_ready_not_sent_is_an_ordinary_unavailable() -> None:
    script = Script(NotSentError("connection refused"))
    async with within(10):
        with pytest.raises(NotSentError) as info:
            await call_with_retries(
                script,
                timeout=5.0,
                max_retries=3,
                policy=FAST,
                budget=empty_budget(),
                wait_for_ready=False,
            )
    # The budget was spent: no retry at all.
    assert script.calls == 1
    assert info.value.attempts == 1


async def test_waiting_for_a_server_ends_at_the_deadline() -> None:
    script = Script(NotSentError("connection refused"), forever=True)
    async with within(10):
        with pytest.raises(DeadlineExceededError, match="no server could be reached") as info:
            await call_with_retries(
                script,
                timeout=0.2,
                max_retries=0,
                policy=FAST,
                budget=RetryBudget(),
                wait_for_ready=True,
            )
    assert isinstance(info.value.__cause__, NotSentError)
    assert script.calls > 1
    assert info.value.attempts == script.calls


async def test_the_transport_is_asked_when_the_server_is_back() -> None:
    back = asyncio.Event()
    asked: list[float | None] = []

    async def wait_for_server(timeout: float | None) -> bool:
        asked.append(timeout)
        back.set()
        return True

    script = Script(NotSentError("refused"), NotSentError("refused"))
    async with within(10):
        assert (
            await call_with_retries(
                script,
                timeout=5.0,
                max_retries=0,
                policy=GLACIAL,  # a requeue never uses the retry backoff
                budget=empty_budget(),
                wait_for_ready=True,
                wait_for_server=wait_for_server,
            )
            == "ok"
        )
    assert back.is_set()
    assert len(asked) == 2
    assert all(t is not None and 0 < t <= 5.0 for t in asked)


async def test_maybe_sent_failures_follow_the_policy_and_its_budget() -> None:
    script = Script(ConnectionFailedError("socket closed"), ConnectionFailedError("reset"))
    async with within(10):
        with pytest.raises(ConnectionFailedError):
            await call_with_retries(
                script,
                timeout=5.0,
                max_retries=5,
                policy=FAST,
                budget=empty_budget(),
                wait_for_ready=True,
            )
    assert script.calls == 1
    charged = RetryBudget(ratio=0.0, min_retries=1)
    script = Script(ConnectionFailedError("socket closed"))
    async with within(10):
        assert (
            await call_with_retries(script, timeout=5.0, max_retries=5, policy=FAST, budget=charged)
            == "ok"
        )
    assert charged.tokens == 0


async def test_non_idempotent_calls_only_requeue() -> None:
    maybe_sent = Script(UnavailableError("socket closed"))
    async with within(10):
        with pytest.raises(UnavailableError):
            await call_with_retries(
                maybe_sent,
                timeout=5.0,
                max_retries=3,
                policy=FAST,
                budget=RetryBudget(),
                wait_for_ready=True,
                idempotent=False,
            )
    assert maybe_sent.calls == 1
    not_sent = Script(NotSentError("refused"))
    async with within(10):
        result = await call_with_retries(
            not_sent,
            timeout=5.0,
            max_retries=0,
            policy=FAST,
            budget=RetryBudget(),
            wait_for_ready=True,
            idempotent=False,
        )
    assert result == "ok"
    assert not_sent.calls == 2


async def test_too_large_messages_are_never_retried() -> None:
    script = Script(MessageTooLargeError("the request is 10 bytes, over the limit of 5 bytes"))
    async with within(10):
        with pytest.raises(MessageTooLargeError):
            await call_with_retries(
                script, timeout=5.0, max_retries=3, policy=FAST, budget=RetryBudget()
            )
    assert script.calls == 1


def _hinted(error: TFServingError, seconds: float) -> TFServingError:
    error.retry_after = seconds
    return error


@pytest.mark.parametrize(
    "error", [ResourceExhaustedError("queue full"), UnavailableError("overloaded")]
)
async def test_a_server_hint_replaces_the_backoff(error: TFServingError) -> None:
    script = Script(_hinted(error, 0.001))
    async with within(10):
        assert (
            await call_with_retries(
                script, timeout=None, max_retries=1, policy=GLACIAL, budget=RetryBudget()
            )
            == "ok"
        )
    assert script.calls == 2


async def test_an_unreasonable_hint_is_ignored() -> None:
    slow = RetryPolicy(initial_backoff=0.001, max_backoff=0.001, jitter=0.0, max_retry_after=1.0)
    script = Script(_hinted(ResourceExhaustedError("busy"), 3600.0))
    async with within(10):
        result = await call_with_retries(
            script, timeout=None, max_retries=1, policy=slow, budget=RetryBudget()
        )
    assert result == "ok"
    assert script.calls == 2


async def test_a_hint_past_the_deadline_ends_the_call_at_once() -> None:
    script = Script(_hinted(UnavailableError("come back in 20 s"), 20.0))
    async with within(10):
        with pytest.raises(UnavailableError, match="come back"):
            await call_with_retries(
                script, timeout=5.0, max_retries=3, policy=FAST, budget=RetryBudget()
            )
    assert script.calls == 1
