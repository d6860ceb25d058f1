"""Hot reload under load: a new version loads and the ``stable`` label moves to it while
callers keep calling; label callers see no failure, callers pinned to the removed version
get TF Serving's NOT_FOUND, and the client's cached metadata follows the label."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, double_model, target_of, within
from tfs_async import Client, NotFoundError, TFServingError
from tfs_async.metadata_cache import MetadataCache
from tfs_async.testing import ModelServer
from tfs_async.types import ModelMetadata, ModelSpec

CALLERS = 16


def config(versions: Sequence[int], labels: dict[str, int]) -> str:
    """models.config text serving ``versions`` of model "m" with ``labels``."""
    wanted = " ".join(f"versions: {v}" for v in versions)
    label_text = "".join(f" version_labels {{ key: '{k}' value: {v} }}" for k, v in labels.items())
    return (
        "model_config_list { config { name: 'm' base_path: '/m' model_platform: 'tensorflow' "
        f"model_version_policy {{ specific {{ {wanted} }} }}{label_text} }} }}"
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.config"
    path.write_text(config([1], {"stable": 1}))
    return path


@pytest_asyncio.fixture
async def reloading(config_file: Path) -> AsyncIterator[ModelServer]:
    """Model "m" (y = 2x + version): versions 1 and 2 exist, 1 is served, stable -> 1."""
    async with within(STEP):
        # As with TF Serving, a first config may name labels of versions still loading
        # only with this flag.
        srv = ModelServer(
            [double_model("m", (1, 2))],
            model_config_file=config_file,
            allow_version_labels_for_unavailable_models=True,
        )
        await srv.start()
    try:
        yield srv
    finally:
        async with within(STEP):
            await srv.stop()


class Load:
    """Callers predicting through the ``stable`` label until stopped; answers checked."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.versions: Counter[int] = Counter()
        self.failures: list[TFServingError] = []
        self.stop = asyncio.Event()
        self.saw_old = asyncio.Event()
        self.saw_new = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def caller(self, seed: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            x = float(seed * 100_000 + i)
            try:
                result = await self.client.predict(
                    "m", {"x": np.array([x], np.float32)}, label="stable"
                )
            except TFServingError as error:
                self.failures.append(error)
                continue
            version = int(result.output[0] - 2 * x)  # y = 2x + version: which version answered
            self.versions[version] += 1
            (self.saw_new if version == 2 else self.saw_old).set()

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.caller(n)) for n in range(CALLERS)]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


async def _move_label(
    server: ModelServer, apply: Callable[[str], Awaitable[None]], protocol: str
) -> None:
    async with Client(target_of(server, protocol), timeout=STEP) as client:
        load = Load(client)
        async with within(STEP):
            before = await client.metadata("m", label="stable")
        load.start()
        try:
            async with within(STEP * 3):
                await load.saw_old.wait()
                # A new version loads beside the old one, then the label moves and v1 goes.
                await apply(config([1, 2], {"stable": 1}))
                await client.wait_until_available("m", version=2, timeout=STEP)
                await apply(config([2], {"stable": 2}))
                await load.saw_new.wait()
        finally:
            async with within(STEP):
                await load.finish()
        async with within(STEP):
            after = await client.metadata("m", label="stable")
            with pytest.raises(NotFoundError) as pinned:
                await client.predict("m", {"x": np.array([1.0], np.float32)}, version=1)
    assert load.failures == []
    assert load.versions[1] > 0
    assert load.versions[2] > 0
    assert set(load.versions) == {1, 2}
    assert before.model.version == 1
    assert after.model.version == 2
    # TF Serving's answer for a version that is no longer served.
    assert "Servable not found for request: Specific(m, 1)" in pinned.value.message


async def test_reload_config_moves_the_label_under_load(
    reloading: ModelServer, protocol: str
) -> None:
    async with Client(target_of(reloading, "grpc"), timeout=STEP) as admin:

        async def apply(text: str) -> None:
            await admin.reload_config(text)

        await _move_label(reloading, apply, protocol)


async def test_an_edited_models_config_moves_the_label_under_load(
    reloading: ModelServer, config_file: Path, protocol: str
) -> None:
    async def apply(text: str) -> None:
        await asyncio.to_thread(config_file.write_text, text)
        await reloading.core.poll_config_file()  # what the file poller does on its next tick

    await _move_label(reloading, apply, protocol)


async def test_label_metadata_is_kept_briefly_and_dropped_on_not_found(
    reloading: ModelServer, protocol: str
) -> None:
    async with Client(target_of(reloading, "grpc"), timeout=STEP) as admin, within(STEP):
        await admin.reload_config(config([1, 2], {"stable": 1}))
        await admin.wait_until_available("m", version=2, timeout=STEP)
    async with Client(target_of(reloading, protocol), timeout=STEP) as client, within(STEP):
        cache = client._shared.metadata
        # Metadata by label or for the latest version names whichever version the server
        # resolved: kept at most a second, so it follows a label that moves.
        assert cache.unpinned_ttl <= 1.0
        assert cache.ttl == 60.0
        await client.predict("m", {"x": np.array([1.0], np.float32)}, version=1)
        await admin_reload(reloading, config([2], {"stable": 2}))
        with pytest.raises(NotFoundError):
            await client.predict("m", {"x": np.array([1.0], np.float32)}, version=1)
        # NOT_FOUND dropped every cached entry of the model.
        assert not [key for key in cache._entries if key[0] == "m"]
        moved = await client.predict("m", {"x": np.array([1.0], np.float32)}, label="stable")
    np.testing.assert_array_equal(moved.output, [4.0])


async def test_unpinned_entries_expire_before_pinned_ones() -> None:
    cache = MetadataCache(ttl=60.0, unpinned_ttl=0.0)
    fetched: Counter[str] = Counter()

    def fetch(what: str) -> Callable[[], Awaitable[ModelMetadata]]:
        async def run() -> ModelMetadata:
            fetched[what] += 1
            return ModelMetadata(ModelSpec("m", version=1), {})

        return run

    for _ in range(3):
        await cache.get(ModelSpec("m", label="stable"), fetch("label"))
        await cache.get(ModelSpec("m"), fetch("latest"))
        await cache.get(ModelSpec("m", version=1), fetch("pinned"))
    assert fetched == {"label": 3, "latest": 3, "pinned": 1}


async def admin_reload(server: ModelServer, text: str) -> None:
    async with Client(target_of(server, "grpc"), timeout=STEP) as admin:
        await admin.reload_config(text)
