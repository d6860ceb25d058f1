"""The calls of TF Serving's other RPCs (classify, regress, multi-inference, metadata,
status, reload), and waiting for a version: :class:`~tfs_async.client.Client` inherits them.

Each builds a protocol-neutral request and hands it to the client's one call path
(``_call``: deadline, retries, observers), so they behave alike on both transports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tfs_async.client_state import MAX_POLL_INTERVAL, SharedState, as_examples, model_spec
from tfs_async.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from tfs_async.retry import backoff_delay
from tfs_async.transport.base import CallOptions
from tfs_async.types import (
    ClassifyRequest,
    ClassifyResult,
    Features,
    InferenceTask,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    MultiInferenceRequest,
    MultiInferenceResult,
    RegressRequest,
    RegressResult,
    VersionState,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from tfs_async._proto.model_server_config_pb2 import ModelServerConfig

__all__ = ["ModelServiceCalls"]

T = TypeVar("T")


class ModelServiceCalls:
    """The client's calls beside Predict; see :class:`~tfs_async.client.Client`."""

    _shared: SharedState

    def _call(
        self,
        run: Callable[[CallOptions], Awaitable[T]],
        model: ModelSpec | None,
        timeout: float | None,
        method: str = "Predict",
    ) -> Awaitable[T]:
        raise NotImplementedError  # the client's one call path

    def with_options(self, **overrides: Any) -> Self:
        raise NotImplementedError

    async def classify(
        self,
        model: str,
        examples: Features | Sequence[Features],
        *,
        context: Features | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        timeout: float | None = None,
    ) -> ClassifyResult:
        """Classify examples given as plain dicts of features (tf.Examples are built for you)."""
        spec = model_spec(model, version, label, signature)
        request = ClassifyRequest(spec, as_examples(examples), context)
        transport = self._shared.transport
        return await self._call(lambda o: transport.classify(request, o), spec, timeout, "Classify")

    async def regress(
        self,
        model: str,
        examples: Features | Sequence[Features],
        *,
        context: Features | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        timeout: float | None = None,
    ) -> RegressResult:
        """Regress examples given as plain dicts of features (tf.Examples are built for you)."""
        spec = model_spec(model, version, label, signature)
        request = RegressRequest(spec, as_examples(examples), context)
        transport = self._shared.transport
        return await self._call(lambda o: transport.regress(request, o), spec, timeout, "Regress")

    async def multi_inference(
        self,
        model: str,
        examples: Features | Sequence[Features],
        *,
        tasks: Mapping[str, str],
        context: Features | None = None,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> MultiInferenceResult:
        """Run several classify/regress signatures over the same examples (gRPC only).

        ``tasks`` maps a signature name to its method, ``"classify"`` or ``"regress"``;
        results come back in that order.
        """
        spec = model_spec(model, version, label)
        if not tasks:
            raise InvalidInputError("multi_inference needs at least one task", model=spec)
        request = MultiInferenceRequest(
            [InferenceTask(spec.with_signature(sig), method) for sig, method in tasks.items()],
            as_examples(examples),
            context,
        )
        transport = self._shared.transport
        return await self._call(
            lambda o: transport.multi_inference(request, o), spec, timeout, "MultiInference"
        )

    async def metadata(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> ModelMetadata:
        """The model's signatures (names, dtypes, shapes, method); refreshes the cache."""
        spec = model_spec(model, version, label)
        transport = self._shared.transport
        cache = self._shared.metadata
        cache.invalidate(spec)
        return await cache.get(
            spec,
            lambda: self._call(
                lambda o: transport.get_model_metadata(spec, o), spec, timeout, "GetModelMetadata"
            ),
        )

    async def status(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> list[ModelVersionStatus]:
        """The state of the model's versions, newest first.

        TF Serving ignores a label here and lists every version.
        """
        spec = model_spec(model, version, label)
        transport = self._shared.transport
        return await self._call(
            lambda o: transport.get_model_status(spec, o), spec, timeout, "GetModelStatus"
        )

    async def wait_until_available(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> ModelVersionStatus:
        """Wait until the model (the version, the label, or any version) can serve.

        Polls the model's status (for a label: its metadata) with backoff from
        ``poll_interval`` up to 1 s (:func:`~tfs_async.retry.backoff_delay`, jitter
        up to ``poll_interval``), while the server is unreachable or the model
        unknown or loading. Returns the available version's status; raises
        DeadlineExceededError after ``timeout`` seconds, with the last answer as cause.
        """
        spec = model_spec(model, version, label)
        deadline = time.monotonic() + timeout
        polls = 0
        last: BaseException | None = None
        quick = self.with_options(max_retries=0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceededError(
                    f"not available within {timeout} s"
                    + (f"; last answer: {last}" if last is not None else ""),
                    model=spec,
                ) from last
            try:
                found = await quick._available_version(spec, left)
            except (NotFoundError, UnavailableError, InvalidArgumentError) as error:
                if isinstance(error, InvalidInputError):
                    raise
                # Unknown label (INVALID_ARGUMENT) may be set by a coming reload.
                last, found = error, None
            except DeadlineExceededError as error:
                last, found = error, None
            if found is not None:
                return found
            polls += 1
            pause = backoff_delay(
                polls, initial=poll_interval, maximum=MAX_POLL_INTERVAL, jitter=poll_interval
            )
            await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0)))

    async def _available_version(
        self, spec: ModelSpec, timeout: float
    ) -> ModelVersionStatus | None:
        wanted = spec.version
        if spec.label is not None:
            # Status ignores labels: resolve the label through the metadata.
            metadata = await self.metadata(spec.name, label=spec.label, timeout=timeout)
            wanted = metadata.model.version
        statuses = await self.status(spec.name, version=spec.version, timeout=timeout)
        for status in statuses:
            if status.state == VersionState.AVAILABLE and wanted in (None, status.version):
                return status
        return None

    async def reload_config(
        self, config: str | ModelServerConfig, *, timeout: float | None = None
    ) -> None:
        """Replace the server's model config (gRPC only): text format or a ModelServerConfig.

        The cached metadata is dropped afterwards (versions and labels may have moved).
        """
        if isinstance(config, str):
            from tfs_async.config import parse_model_server_config

            config = parse_model_server_config(config)
        transport = self._shared.transport
        proto = config
        try:
            await self._call(
                lambda o: transport.reload_config(proto, o),
                None,
                timeout,
                "HandleReloadConfigRequest",
            )
        finally:
            self._shared.metadata.invalidate()
