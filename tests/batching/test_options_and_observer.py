"""``Batching`` settings: what is refused, per-model lookups, the observer and its numbers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest

from tests.support.batching import MODEL, Recorder, hold_group, rows, target_of
from tests.support.client import STEP, within
from tfs_async import BatchEvent, Batching, Client
from tfs_async.options import ClientOptions
from tfs_async.testing import ModelServer


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"max_batch_size": 0}, ValueError, "max_batch_size must be >= 1"),
        ({"max_batch_size": 2.5}, TypeError, "max_batch_size must be an int"),
        ({"max_batch_size": True}, TypeError, "max_batch_size must be an int"),
        ({"max_delay": -1}, ValueError, "max_delay must be >= 0 seconds"),
        ({"max_delay": float("nan")}, ValueError, "max_delay"),
        ({"max_delay": "2ms"}, TypeError, "max_delay must be seconds"),
        ({"max_queue": 0}, ValueError, "max_queue"),
        ({"max_in_flight": 0}, ValueError, "max_in_flight"),
        ({"max_isolation_requests": -1}, ValueError, "max_isolation_requests"),
        ({"when_full": "drop"}, ValueError, "'wait' or 'raise'"),
        ({"observer": 3}, TypeError, "observer must be callable"),
        ({"models": {"m": 64}}, TypeError, r"models\['m'\] must be a Batching or None"),
        (
            {"models": {"m": Batching(models={"n": None})}},
            ValueError,
            "cannot have models of its own",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        Batching(**kwargs)


def test_per_model_settings() -> None:
    bert = Batching(max_batch_size=8)
    models: dict[str, Batching | None] = {"bert": bert, "tiny": None}
    batching = Batching(max_batch_size=32, models=models)
    models["late"] = None  # the settings keep their own copy
    assert batching.for_model("bert") is bert
    assert batching.for_model("tiny") is None
    assert batching.for_model("late") is batching
    assert batching.for_model("resnet") is batching
    # Settings are values: equal settings batch together.
    assert Batching(max_batch_size=32) == Batching(max_batch_size=32, models={"x": None})
    assert hash(Batching()) == hash(Batching())


def test_client_options_take_batching() -> None:
    options = ClientOptions().merged(batching=Batching(max_delay=0.01))
    assert options.batching == Batching(max_delay=0.01)
    assert options.merged(batching=None).batching is None
    with pytest.raises(TypeError, match=r"batching must be a tfs_async\.Batching"):
        ClientOptions(batching={"max_batch_size": 8})  # type: ignore[arg-type]


async def test_the_observer_sees_every_request_as_plain_numbers(
    server: ModelServer, rec: Recorder, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[BatchEvent] = []

    def observe(event: BatchEvent) -> None:
        events.append(event)
        if len(events) == 1:
            raise RuntimeError("a broken observer must not break predictions")

    batching = Batching(max_delay=STEP * 10, observer=observe)
    async with Client(
        target_of(server, protocol), timeout=STEP, max_retries=0, batching=batching
    ) as client:
        async with within(STEP):
            first = await hold_group(client, "gated", rec)
            tasks = [
                asyncio.create_task(client.predict(MODEL, {"x": rows(i, 2)}, signature="gated"))
                for i in range(3)
            ]
            rec.release()
            results = await asyncio.gather(first, *tasks)
        stats = client.batching_stats()
    for i, result in enumerate(results[1:]):
        np.testing.assert_array_equal(result.output, rows(i, 2) * 2)
    assert [(e.model, e.rows, e.callers, e.reason) for e in events] == [
        (MODEL, 1, 1, "idle"),
        (MODEL, 6, 3, "idle"),
    ]
    assert all(e.queue_delay >= 0.0 for e in events)
    assert all(e.in_flight == 1 for e in events)
    assert "a broken observer" in caplog.text
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert stats.queue_delay_max == pytest.approx(events[1].queue_delay)
