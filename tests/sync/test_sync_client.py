"""SyncClient: the Client's calls without await, from plain threads and from inside event loops."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tfs_async
from tfs_async import (
    Batching,
    Client,
    DeadlineExceededError,
    InvalidInputError,
    NotFoundError,
    SyncClient,
    VersionState,
)
from tfs_async.testing import ModelServerProcess

STEP = 10.0  # seconds: the deadline of every call (a stalled call ends with DeadlineExceededError)
HERE = Path(__file__).parent
PROTOCOLS = ["grpc", "http"]


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServerProcess]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    with ModelServerProcess(
        python_models=["sync_models:build"], env=env, startup_timeout=STEP * 6
    ) as srv:
        yield srv


def target_of(server: ModelServerProcess, protocol: str) -> str:
    return f"grpc://{server.grpc_target}" if protocol == "grpc" else server.rest_url


@pytest.fixture(params=PROTOCOLS)
def target(request: pytest.FixtureRequest, server: ModelServerProcess) -> str:
    return target_of(server, str(request.param))


@pytest.fixture
def client(target: str) -> Iterator[SyncClient]:
    with SyncClient(target, timeout=STEP, max_retries=0) as c:
        yield c


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tfs_async.SyncClient"]


def test_exported_from_the_package() -> None:
    assert tfs_async.SyncClient is SyncClient


def test_predict_metadata_status(client: SyncClient) -> None:
    x = np.array([1.0, 2.5], np.float32)
    result = client.predict("double", {"x": x})
    np.testing.assert_array_equal(result["y"], x * 2 + 2)
    assert result.model is not None
    assert result.model.name == "double"
    assert client.predict("double", x, version=1)["y"].tolist() == [3.0, 6.0]  # single input
    only_y = client.predict("double", {"x": x}, output_filter=["y"])
    assert set(only_y) == {"y"}
    metadata = client.metadata("double")
    assert metadata.model.version == 2
    assert set(metadata.signature().outputs) == {"y", "n"}
    assert [s.version for s in client.status("double")] == [2, 1]
    available = client.wait_until_available("double", version=1, timeout=STEP)
    assert (available.version, available.state) == (1, VersionState.AVAILABLE)


def test_classify_regress(client: SyncClient) -> None:
    examples = [{"f": 0.25}, {"f": 0.5}]
    classified = client.classify("kinds", examples, signature="classify")
    assert classified.classes == [[("yes", 0.25), ("no", 0.75)], [("yes", 0.5), ("no", 0.5)]]
    regressed = client.regress("kinds", examples, signature="regress")
    assert regressed.values.tolist() == [2.5, 5.0]


def test_multi_inference_over_grpc(server: ModelServerProcess) -> None:
    with SyncClient(target_of(server, "grpc"), timeout=STEP) as client:
        result = client.multi_inference(
            "kinds", [{"f": 0.5}], tasks={"classify": "classify", "regress": "regress"}
        )
    assert [type(r).__name__ for r in result.results] == ["ClassifyResult", "RegressResult"]


def test_errors_are_the_async_clients_own(client: SyncClient, target: str) -> None:
    x = np.array([1.0], np.float32)
    with pytest.raises(NotFoundError) as caught:
        client.predict("no_such_model", {"x": x})

    async def from_async() -> NotFoundError:
        async with Client(target, timeout=STEP, max_retries=0) as async_client:
            try:
                await async_client.predict("no_such_model", {"x": x})
            except NotFoundError as error:
                return error
        raise AssertionError("no error")

    expected = asyncio.run(from_async())
    error = caught.value
    assert (type(error), error.code, error.message, error.model) == (
        type(expected),
        expected.code,
        expected.message,
        expected.model,
    )
    with pytest.raises(InvalidInputError, match="version"):
        client.predict("double", {"x": x}, version=1, label="stable")


def test_the_deadline_ends_a_stalled_call(client: SyncClient) -> None:
    with pytest.raises(DeadlineExceededError):
        client.predict("stall", {"x": np.array([1.0], np.float32)}, timeout=0.3)
    # The client keeps working after a call timed out.
    assert client.predict("double", {"x": np.array([1.0], np.float32)})["y"].tolist() == [4.0]


def test_many_threads_share_one_client(client: SyncClient) -> None:
    def work(worker: int) -> list[bool]:
        answers = []
        for i in range(25):
            x = np.array([worker, i, worker * 100 + i], np.float32)
            answers.append(client.predict("double", {"x": x})["y"].tolist() == (x * 2 + 2).tolist())
        return answers

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(16), timeout=STEP * 6))
    assert all(all(r) for r in results)
    assert len(sync_threads()) == 1  # one loop thread, whatever the number of callers


def test_batching_merges_the_calls_of_many_threads(client: SyncClient) -> None:
    threads = 8
    batched = client.with_options(batching=Batching(max_batch_size=threads, max_delay=STEP))
    start = threading.Barrier(threads, timeout=STEP)

    def call(i: int) -> list[float]:
        start.wait()
        result = batched.predict("double", {"x": np.array([float(i)], np.float32)})
        return [float(v) for v in result["y"]]

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(call, range(threads), timeout=STEP * 3))
    assert answers == [[i * 2.0 + 2] for i in range(threads)]  # each thread its own row
    stats = batched.batching_stats()
    assert stats.rows == threads
    # predict_many submits every item in one turn of the client's loop: one request.
    results = batched.predict_many(
        "double", [{"x": np.array([float(i)], np.float32)} for i in range(threads)]
    )
    assert [r["y"].tolist() for r in results] == [[i * 2.0 + 2] for i in range(threads)]
    assert all(r["n"].tolist() == [threads] for r in results)  # one request carried all eight


async def test_works_from_a_thread_running_an_event_loop(target: str) -> None:
    # A Jupyter cell: the calling thread runs a loop; the sync call blocks it, no re-entry.
    asyncio.get_running_loop()
    with SyncClient(target, timeout=STEP) as client:
        result = client.predict("double", {"x": np.array([3.0], np.float32)})
    assert result["y"].tolist() == [8.0]


def test_with_options_shares_the_thread_and_connections(client: SyncClient) -> None:
    quick = client.with_options(timeout=0.3)
    assert quick.options.timeout == 0.3
    assert client.options.timeout == STEP
    assert quick.transport is client.transport
    with pytest.raises(DeadlineExceededError):
        quick.predict("stall", {"x": np.array([1.0], np.float32)})
    quick.close()  # closes the shared connections, as the async client's copies do
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        client.predict("double", {"x": np.array([1.0], np.float32)})


def test_close_is_idempotent_and_leaks_no_threads(server: ModelServerProcess) -> None:
    def use_once(target: str) -> None:
        client = SyncClient(target, timeout=STEP)
        client.predict("double", {"x": np.array([1.0], np.float32)})
        client.close()
        client.close()
        assert client.closed

    targets = [target_of(server, p) for p in PROTOCOLS]
    for target in targets:  # warm up: grpc starts its own threads once per process
        use_once(target)
    before = {t.ident for t in threading.enumerate()}
    for _ in range(5):
        for target in targets:
            use_once(target)
    assert {t.ident for t in threading.enumerate()} <= before
    assert sync_threads() == []


def test_an_unclosed_client_warns_and_is_closed_when_collected(target: str) -> None:
    client = SyncClient(target, timeout=STEP)
    client.predict("double", {"x": np.array([1.0], np.float32)})
    with pytest.warns(ResourceWarning, match="never closed"):
        del client  # the last reference: the finalizer runs now
    assert sync_threads() == []


def test_a_bad_target_raises_and_leaves_no_thread() -> None:
    with pytest.raises(ValueError, match="target"):
        SyncClient("ftp://127.0.0.1:1")
    assert sync_threads() == []


def test_closed_client_refuses_calls(target: str) -> None:
    client = SyncClient(target, timeout=STEP)
    client.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        with pytest.raises(RuntimeError, match="closed"):
            client.predict("double", {"x": np.array([1.0], np.float32)})
    with pytest.raises(RuntimeError, match="closed"), client:
        pass


def test_reload_config_then_wait_until_available(models_dir: Path) -> None:
    base = models_dir / "saved_model_half_plus_two_cpu"
    with (
        ModelServerProcess(
            model_name="half_plus_two", model_base_path=base, startup_timeout=STEP * 6
        ) as srv,
        SyncClient(f"grpc://{srv.grpc_target}", timeout=STEP) as client,
    ):
        client.reload_config(
            f'model_config_list {{ config {{ name: "renamed" base_path: "{base}" '
            'model_platform: "tensorflow" } }'
        )
        status = client.wait_until_available("renamed", timeout=STEP)
        assert status.state == VersionState.AVAILABLE
        assert client.predict("renamed", np.array([1.0], np.float32))["y"].tolist() == [2.5]
        with pytest.raises(NotFoundError):
            client.predict("half_plus_two", np.array([1.0], np.float32))
