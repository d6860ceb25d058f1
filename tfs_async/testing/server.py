"""``ModelServer``: the TF Serving emulator in this process, on real gRPC and REST sockets.

>>> import asyncio
>>> from tfs_async.testing import ModelServer
>>> async def main() -> str:
...     async with ModelServer(grpc_port=0, rest_port=0) as server:
...         return server.grpc_target.split(":")[0]
>>> asyncio.run(main())
'127.0.0.1'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc
import grpc.aio
from aiohttp import web

from tfs_async._proto.model_server_config_pb2 import ModelServerConfig
from tfs_async.testing.addresses import ListenerAddresses, host_for_url
from tfs_async.testing.batch_scheduler import SharedBatchScheduler
from tfs_async.testing.device_model import DeviceModel
from tfs_async.testing.faults import FaultPlan
from tfs_async.testing.front import ServingFront
from tfs_async.testing.grpc_service import (
    GRPC_SERVER_OPTIONS,
    build_handlers,
    build_health_handler,
)
from tfs_async.testing.models import ModelSource
from tfs_async.testing.monitoring import Metrics
from tfs_async.testing.profiler import ProfilerService
from tfs_async.testing.rest_service import RestService
from tfs_async.testing.server_config import BatchingParameters
from tfs_async.testing.serving import ServerCore

__all__ = ["ModelServer"]

_log = logging.getLogger(__name__)

# How long in-flight calls may finish when the server stops.
_GRACE_SECONDS = 1.0


class ModelServer(ListenerAddresses):
    """TF Serving's ``tensorflow_model_server``, emulated in-process (gRPC + REST).

    Args:
        models: Python models / SavedModel sources to serve (see :mod:`tfs_async.testing.models`).
        model_config_file: a ``models.config`` in TF Serving's text format.
        config: a ``ModelServerConfig`` (proto or text) instead of a file.
        grpc_port: gRPC port; 0 picks a free port, ``None`` disables gRPC.
        rest_port: REST port; 0 picks a free port, ``None`` disables REST.
        host: the address both listeners bind (127.0.0.1 unless told otherwise).
        enable_serialization_as_tensor_content: gRPC Predict outputs in ``tensor_content``.
        rest_api_timeout_in_ms: run timeout of REST predict/classify/regress (<= 0: none).
        rest_api_enable_cors_support: add TF Serving's CORS headers to every REST API answer
            (``--rest_api_enable_cors_support``; see :mod:`tfs_async.testing.rest_service`).
        model_config_file_poll_wait_seconds: re-read ``model_config_file`` this often (0: never).
        faults: a :class:`~tfs_async.testing.faults.FaultPlan` applied to every call; it can
            be changed, or replaced through :attr:`faults`, while the server runs.
        prometheus_path: serve TF Serving's Prometheus page on this REST path
            (see :mod:`tfs_async.testing.monitoring`).
        batching: batch Predict calls with these parameters (``--enable_batching``;
            see :mod:`tfs_async.testing.batch_scheduler`).
        device: charge Predict calls to this emulated device
            (``--emulate_device_latency``; see :mod:`tfs_async.testing.device_model`).
        grpc_socket_path: also serve gRPC on this UNIX socket (``--grpc_socket_path``).
        grpc_options: extra gRPC server channel arguments (TF's ``--grpc_channel_arguments``).
        enable_grpc_healthcheck_service: also serve ``grpc.health.v1.Health/Check``.
        enable_profiler: serve TSL's ``tensorflow.ProfilerService`` on the gRPC port, as
            TF Serving does by default (``--enable_profiler``; see
            :mod:`tfs_async.testing.profiler`); the service is :attr:`profiler`.
        grpc_credentials: serve gRPC over TLS with these (``grpc.ssl_server_credentials``).
        ssl_context: serve REST over HTTPS with this server-side context.
        core: a ready :class:`~tfs_async.testing.serving.ServerCore` to serve instead of
            building one (the server then neither starts nor stops it).
        **core_options: further keyword arguments for :class:`ServerCore`, among them
            TF Serving's ``file_system_poll_wait_seconds`` (default 1),
            ``allow_version_labels_for_unavailable_models`` and
            ``enable_signature_method_name_check``.

    After :meth:`start` (or entering ``async with``), :attr:`grpc_target`,
    :attr:`rest_url`, :attr:`grpc_port` and :attr:`rest_port` tell where it listens.
    """

    def __init__(
        self,
        models: Sequence[ModelSource] = (),
        *,
        model_config_file: str | os.PathLike[str] | None = None,
        config: ModelServerConfig | str | None = None,
        grpc_port: int | None = 0,
        rest_port: int | None = 0,
        host: str = "127.0.0.1",
        enable_serialization_as_tensor_content: bool = False,
        rest_api_timeout_in_ms: int = 30000,
        rest_api_enable_cors_support: bool = False,
        model_config_file_poll_wait_seconds: float = 0,
        faults: FaultPlan | None = None,
        prometheus_path: str | None = None,
        grpc_options: Sequence[tuple[str, Any]] = (),
        enable_grpc_healthcheck_service: bool = False,
        enable_profiler: bool = True,
        grpc_credentials: grpc.ServerCredentials | None = None,
        ssl_context: ssl.SSLContext | None = None,
        batching: BatchingParameters | None = None,
        device: DeviceModel | None = None,
        grpc_socket_path: str | None = None,
        core: ServerCore | None = None,
        **core_options: Any,
    ) -> None:
        if grpc_port is None and rest_port is None:
            raise ValueError("ModelServer needs at least one of grpc_port and rest_port")
        if grpc_port is not None and rest_port is not None and grpc_port == rest_port != 0:
            raise ValueError(f"grpc_port and rest_port must differ, both are {grpc_port}")
        if model_config_file_poll_wait_seconds < 0:
            raise ValueError("model_config_file_poll_wait_seconds must be >= 0")
        self._owns_core = core is None
        if core is None:
            core = ServerCore(
                models,
                config=config,
                config_file=model_config_file,
                tensor_content=enable_serialization_as_tensor_content,
                **core_options,
            )
        self.core: ServerCore = core
        self.host = host
        self.faults: FaultPlan | None = faults
        self._model_config_file = model_config_file
        self._poll_wait = model_config_file_poll_wait_seconds
        self._requested_grpc_port = grpc_port
        self._requested_rest_port = rest_port
        self._grpc_options = tuple(grpc_options)
        self._grpc_credentials = grpc_credentials
        self._grpc_socket_path = grpc_socket_path
        self._health = enable_grpc_healthcheck_service
        self._ssl_context = ssl_context
        self.metrics: Metrics | None = Metrics() if prometheus_path is not None else None
        """The values the Prometheus page shows (None without ``prometheus_path``)."""
        self.profiler: ProfilerService | None = ProfilerService() if enable_profiler else None
        """The profiler service on the gRPC port (None with ``enable_profiler=False``)."""
        self.batch_scheduler = (
            None if batching is None else SharedBatchScheduler(batching, device, self.metrics)
        )
        # The one hook into the prediction path: both faces call a front that batches,
        # charges the device and counts gRPC calls before reaching the core. Without
        # any of those the faces call the core itself.
        grpc_front = rest_front = core
        if self.batch_scheduler is not None or device is not None or self.metrics is not None:
            grpc_front = ServingFront(
                core, scheduler=self.batch_scheduler, device=device, metrics=self.metrics
            ).as_core()
            rest_front = ServingFront(core, scheduler=self.batch_scheduler, device=device).as_core()
        self._front = grpc_front
        self._rest = RestService(
            rest_front,
            timeout_ms=rest_api_timeout_in_ms,
            faults=lambda: self.faults,
            prometheus_path=prometheus_path,
            metrics=self.metrics,
            trace=self.profiler,
            enable_cors_support=rest_api_enable_cors_support,
        )
        self._grpc_server: grpc.aio.Server | None = None
        self._rest_runner: web.ServerRunner | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._core_started = False
        self.grpc_port: int | None = None
        self.rest_port: int | None = None

    # -- addresses (grpc_target, rest_url: ListenerAddresses) ----------------

    @property
    def _rest_scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def running(self) -> bool:
        """True while at least one listener is up."""
        return self._grpc_server is not None or self._rest_runner is not None

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Load the models, then open the listeners; returns once both accept calls."""
        if self.running:
            raise RuntimeError("ModelServer is already running")
        if self._owns_core and not self._core_started:
            await self.core.start()
            self._core_started = True
        try:
            await self._open_listeners(self._requested_grpc_port, self._requested_rest_port)
        except BaseException:
            await self.stop()
            raise
        if self._model_config_file is not None and self._poll_wait > 0:
            self._poll_task = asyncio.create_task(self._poll_config(), name="tfs-config-poll")

    async def stop(self) -> None:
        """Close both listeners (in-flight calls get a short grace), then unload the models.

        Idempotent. Calls stalled by a fault plan are released first.
        """
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        await self._close_listeners()
        self.grpc_port = self.rest_port = None
        if self.batch_scheduler is not None:
            await self.batch_scheduler.close()
        if self._owns_core and self._core_started:
            self._core_started = False
            await self.core.stop()

    async def suspend(self) -> None:
        """Close the listeners but keep the models loaded (clients see the server go down)."""
        await self._close_listeners()

    async def resume(self) -> None:
        """Reopen the listeners on the same ports as before :meth:`suspend`."""
        if self.running:
            raise RuntimeError("ModelServer is already running")
        await self._open_listeners(
            self._bound_or_requested(self.grpc_port, self._requested_grpc_port),
            self._bound_or_requested(self.rest_port, self._requested_rest_port),
        )

    async def restart(self, *, downtime: float = 0.0) -> None:
        """Drop every connection and listen again on the same ports.

        ``downtime`` seconds pass between closing and reopening (a server that is
        briefly unreachable). The models stay loaded.
        """
        ports = (self.grpc_port, self.rest_port)
        await self._close_listeners()
        if downtime > 0:
            await asyncio.sleep(downtime)
        self.grpc_port, self.rest_port = ports
        await self.resume()

    async def __aenter__(self) -> ModelServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- internals ---------------------------------------------------------

    @staticmethod
    def _bound_or_requested(bound: int | None, requested: int | None) -> int | None:
        return None if requested is None else (bound if bound is not None else requested)

    async def _open_listeners(self, grpc_port: int | None, rest_port: int | None) -> None:
        if grpc_port is not None:
            handlers = build_handlers(self._front, lambda: self.faults, self.profiler)
            if self._health:
                handlers.append(build_health_handler())
            if self.profiler is not None:
                handlers.append(self.profiler.handler())
            server = grpc.aio.server(
                handlers=handlers,
                options=GRPC_SERVER_OPTIONS + self._grpc_options,
            )
            address = f"{host_for_url(self.host)}:{grpc_port}"
            try:
                if self._grpc_credentials is not None:
                    bound = server.add_secure_port(address, self._grpc_credentials)
                else:
                    bound = server.add_insecure_port(address)
                if self._grpc_socket_path:
                    address = f"unix:{self._grpc_socket_path}"
                    if self._grpc_credentials is not None:
                        server.add_secure_port(address, self._grpc_credentials)
                    else:
                        server.add_insecure_port(address)
            except RuntimeError as exc:
                raise OSError(f"cannot bind gRPC to {address}: {exc}") from exc
            await server.start()
            self._grpc_server = server
            self.grpc_port = bound
        if rest_port is not None:
            # The handler reads bodies itself (gzip with TF's limit, no size cap);
            # a client that disconnects cancels its handler.
            low_level = web.Server(
                self._rest.handle, handler_cancellation=True, auto_decompress=False
            )
            runner = web.ServerRunner(
                low_level, handle_signals=False, shutdown_timeout=_GRACE_SECONDS
            )
            await runner.setup()
            site = web.TCPSite(
                runner, self.host, rest_port, reuse_address=True, ssl_context=self._ssl_context
            )
            try:
                await site.start()
            except BaseException:
                await runner.cleanup()
                raise
            self._rest_runner = runner
            self.rest_port = int(runner.addresses[0][1])

    async def _close_listeners(self) -> None:
        if self.faults is not None:
            self.faults.release_stalls()
        grpc_server, self._grpc_server = self._grpc_server, None
        runner, self._rest_runner = self._rest_runner, None
        if grpc_server is not None:
            await grpc_server.stop(_GRACE_SECONDS)
        if runner is not None:
            await runner.cleanup()

    async def _poll_config(self) -> None:
        while True:
            # A timer, not synchronisation: TF Serving polls on a fixed period too.
            await asyncio.sleep(self._poll_wait)
            try:
                await self.core.poll_config_file()
            except Exception:
                # A broken file keeps the previous config; the model manager reports why.
                _log.exception("polling the model config file failed")

    def __repr__(self) -> str:
        return f"ModelServer(grpc_port={self.grpc_port}, rest_port={self.rest_port})"
