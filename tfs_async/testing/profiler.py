"""TF Serving's profiler service (``--enable_profiler``, default on), emulated.

TF Serving registers TSL's ``tensorflow.ProfilerService`` on its gRPC port
(``model_servers/server.cc``); TensorFlow's profiler client
(``tf.profiler.experimental.client.trace``, TF Serving's ``profiler_client.py``,
TensorBoard's capture button) calls its ``Profile`` method. The emulator
answers it the way TSL's ``ProfilerServiceImpl`` does
(``xla/tsl/profiler/rpc/profiler_service_impl.cc``):

* ``Profile`` starts a session, waits ``opts.duration_ms`` (ended early by
  ``Terminate`` for its ``session_id``, or by the client cancelling), then
  collects an ``XSpace``; with ``emit_xspace`` it goes in the response,
  otherwise it is written to ``<repository_root>/<session_id>/<host_name>.xplane.pb``
  (``:`` in the host name becomes ``_``: TSL's ``SaveXSpace``). ``empty_trace``
  says whether the space holds no event; TF's client retries an empty trace and
  reports ``No trace event was collected`` after its last attempt.
* One session at a time: a second concurrent ``Profile`` fails with INTERNAL
  ``Another profiling session active.`` (TSL's ``ProfilerLock``).
* ``Monitor`` answers UNIMPLEMENTED ``unimplemented.``; the continuous-profiling
  methods are not served (UNIMPLEMENTED, as for any unknown method).

What differs is the trace itself. TF Serving's holds TensorFlow's host and
device events (threads, ops, kernels); the emulator runs no TensorFlow graph of
its own, so its trace holds what it did: one plane ``/host:CPU`` with a line per
transport (``gRPC``, ``REST``) and one event per call that started during the
session, named by the call (``predict``, ``get_model_status``...) and carrying
the model name and the status code as stats.

>>> from tfs_async._proto import profiler_service_pb2
>>> service = ProfilerService()
>>> service.active
False
>>> call = TracedCall("gRPC", "predict", "m", "OK", start_ns=2_000, duration_ns=500)
>>> space = service.trace_space([call], start_ns=1_000, end_ns=9_000)
>>> line = space.planes[0].lines[0]
>>> line.name, line.events[0].offset_ps, line.events[0].duration_ps
('gRPC', 1000000, 500000)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from tfs_async._proto import profiler_service_pb2, xplane_pb2

__all__ = ["LOCK_CONTENTION", "PROFILER_SERVICE", "ProfilerService", "TracedCall"]

#: The gRPC service TF Serving registers for the profiler.
PROFILER_SERVICE = "tensorflow.ProfilerService"

#: TSL's refusal of a second concurrent session (``kProfilerLockContention``).
LOCK_CONTENTION = "Another profiling session active."

#: The plane TSL's host tracer writes (``kHostThreadsPlaneName``).
HOST_PLANE = "/host:CPU"

_LINES = ("gRPC", "REST")
_STATS = ("model_name", "status")


@dataclass(frozen=True)
class TracedCall:
    """One call the server answered while a session ran (times in wall-clock nanoseconds)."""

    transport: str
    method: str
    model: str
    code: str
    start_ns: int
    duration_ns: int


@dataclass
class _Session:
    session_id: str
    start_ns: int
    calls: list[TracedCall] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class ProfilerService:
    """The ``tensorflow.ProfilerService`` of one :class:`~tfs_async.testing.ModelServer`.

    The server's gRPC and REST faces call :meth:`record` for every call they
    answer; it costs one attribute check while no session runs.
    """

    def __init__(self) -> None:
        self._session: _Session | None = None
        self._terminated: set[str] = set()
        self._running = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> bool:
        """Whether a profiling session is running now."""
        return self._session is not None

    async def started(self) -> str:
        """Wait until a session runs; its ``session_id`` (for tests to time their calls)."""
        while True:
            await self._running.wait()
            session = self._session
            if session is not None:
                return session.session_id

    async def idle(self) -> None:
        """Wait until no session runs (e.g. after a client cancelled its ``Profile`` call)."""
        await self._idle.wait()

    def record(self, transport: str, method: str, model: str, code: str, start_ns: int) -> None:
        """Note a call that ended now and began at ``start_ns`` (``time.time_ns()``)."""
        session = self._session
        if session is None or start_ns < session.start_ns:
            return  # TraceMe records only what starts while a session runs
        duration = max(0, time.time_ns() - start_ns)
        session.calls.append(TracedCall(transport, method, model, code, start_ns, duration))

    # -- the gRPC methods ---------------------------------------------------------------

    async def profile(
        self,
        request: profiler_service_pb2.ProfileRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> profiler_service_pb2.ProfileResponse:
        """Run one session for ``opts.duration_ms`` and return or save its trace."""
        if self._session is not None:
            await context.abort(grpc.StatusCode.INTERNAL, LOCK_CONTENTION)
        session = _Session(request.session_id, time.time_ns())
        self._session = session
        self._idle.clear()
        self._running.set()
        try:
            if request.session_id in self._terminated:
                self._terminated.discard(request.session_id)
                session.stop.set()
            # The session's window, as TSL's loop of 1 ms sleeps; Terminate ends it early.
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(session.stop.wait(), request.opts.duration_ms / 1000)
        finally:
            self._session = None
            self._running.clear()
            self._idle.set()
        space = self.trace_space(session.calls, session.start_ns, time.time_ns(), request.host_name)
        response = profiler_service_pb2.ProfileResponse(
            empty_trace=not any(line.events for plane in space.planes for line in plane.lines)
        )
        if request.emit_xspace:
            response.xspace.CopyFrom(space)
            return response
        try:
            await asyncio.to_thread(_save_space, request, space)
        except OSError as exc:
            await context.abort(grpc.StatusCode.INTERNAL, f"{exc.filename}; {exc.strerror}")
        return response

    async def terminate(
        self,
        request: profiler_service_pb2.TerminateRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> profiler_service_pb2.TerminateResponse:
        """End the session ``session_id`` now (or the one that starts with that id)."""
        session = self._session
        if session is not None and session.session_id == request.session_id:
            session.stop.set()
        else:
            self._terminated.add(request.session_id)
        return profiler_service_pb2.TerminateResponse()

    async def monitor(
        self,
        request: profiler_service_pb2.MonitorRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> profiler_service_pb2.MonitorResponse:
        """TSL answers Monitor with UNIMPLEMENTED."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "unimplemented.")
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler registering Profile, Terminate and Monitor."""

        def unary(behavior: Any, request_type: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                behavior,
                request_deserializer=request_type.FromString,
                response_serializer=lambda message: message.SerializeToString(),
            )

        return grpc.method_handlers_generic_handler(
            PROFILER_SERVICE,
            {
                "Profile": unary(self.profile, profiler_service_pb2.ProfileRequest),
                "Terminate": unary(self.terminate, profiler_service_pb2.TerminateRequest),
                "Monitor": unary(self.monitor, profiler_service_pb2.MonitorRequest),
            },
        )

    # -- the trace ----------------------------------------------------------------------

    @staticmethod
    def trace_space(
        calls: Sequence[TracedCall], start_ns: int, end_ns: int, host: str = ""
    ) -> xplane_pb2.XSpace:
        """The ``XSpace`` of a session that ran from ``start_ns`` to ``end_ns``."""
        space = xplane_pb2.XSpace()
        if host:
            space.hostnames.append(host)
        plane = space.planes.add(id=0, name=HOST_PLANE)
        for stat_id, name in enumerate(_STATS, start=1):
            plane.stat_metadata[stat_id].id = stat_id
            plane.stat_metadata[stat_id].name = name
        event_ids: dict[str, int] = {}
        for line_id, transport in enumerate(_LINES, start=1):
            mine = [call for call in calls if call.transport == transport]
            if not mine:
                continue
            line = plane.lines.add(
                id=line_id,
                display_id=line_id,
                name=transport,
                timestamp_ns=start_ns,
                duration_ps=max(0, end_ns - start_ns) * 1000,
            )
            for call in mine:
                metadata_id = event_ids.setdefault(call.method, len(event_ids) + 1)
                plane.event_metadata[metadata_id].id = metadata_id
                plane.event_metadata[metadata_id].name = call.method
                event = line.events.add(
                    metadata_id=metadata_id,
                    offset_ps=(call.start_ns - start_ns) * 1000,
                    duration_ps=call.duration_ns * 1000,
                )
                event.stats.add(metadata_id=1, str_value=call.model)
                event.stats.add(metadata_id=2, str_value=call.code)
        return space


def _save_space(request: profiler_service_pb2.ProfileRequest, space: xplane_pb2.XSpace) -> None:
    """TSL's SaveXSpace: ``<repository_root>/<session_id>/<host>.xplane.pb``, ``:`` -> ``_``."""
    run_dir = Path(request.repository_root) / request.session_id
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"{request.host_name}.xplane.pb".replace(":", "_")
    (run_dir / name).write_bytes(space.SerializeToString())
