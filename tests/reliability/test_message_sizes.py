"""Message size limits: an oversized request fails before sending, an oversized answer on
receipt, once each, naming the limit and the option that raises it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.client import STEP, target_of, within
from tfs_async import Client, MessageTooLargeError, ResourceExhaustedError
from tfs_async.testing import ModelServer

LIMIT = 4096


async def test_an_oversized_request_fails_once_before_sending(
    server: ModelServer, protocol: str
) -> None:
    big = {"x": np.zeros(10_000, np.float32)}  # 40 kB of tensor, whatever the encoding
    target = target_of(server, protocol)
    assert server.faults is not None
    async with Client(target, timeout=STEP, max_message_size=LIMIT) as client, within(STEP):
        ok = await client.predict("double", {"x": np.array([1.0], np.float32)})
        reached = server.faults.calls
        with pytest.raises(MessageTooLargeError) as info:
            await client.predict("double", big)
        assert server.faults.calls == reached  # nothing reached the server
    np.testing.assert_array_equal(ok.output, [4.0])
    error = info.value
    assert isinstance(error, ResourceExhaustedError)  # the code gRPC gives it
    assert error.attempts == 1
    assert error.limit == LIMIT
    assert error.size is not None
    assert error.size > LIMIT
    assert "max_message_size" in str(error)
    assert "nothing was sent" in str(error)


async def test_an_oversized_response_fails_once_on_receipt(
    server: ModelServer, protocol: str
) -> None:
    target = target_of(server, protocol)
    async with Client(target, timeout=STEP, max_message_size=LIMIT) as client, within(STEP):
        small = await client.predict("expand", {"n": np.array([4], np.int64)})
        with pytest.raises(MessageTooLargeError) as info:
            await client.predict("expand", {"n": np.array([100_000], np.int64)})
        # The connection is still good afterwards.
        again = await client.predict("expand", {"n": np.array([2], np.int64)})
    assert small.output.shape == (4,)
    assert again.output.shape == (2,)
    assert info.value.attempts == 1
    assert "max_message_size" in str(info.value)
    assert "response" in str(info.value)


async def test_a_raised_limit_lets_the_same_messages_through(
    server: ModelServer, protocol: str
) -> None:
    async with (
        Client(target_of(server, protocol), timeout=STEP, max_message_size=LIMIT * 1000) as client,
        within(STEP),
    ):
        result = await client.predict("expand", {"n": np.array([100_000], np.int64)})
    assert result.output.shape == (100_000,)
