"""The served models: sources, ``models.config``, version states, labels and resolution.

:class:`ModelManager` is TF Serving's ServerCore and ModelService: it loads and
unloads versions as the config's version policies say, keeps their states and
labels, resolves a ``ModelSpec`` to the :class:`LoadedVersion` a request runs
on, and answers GetModelStatus and ReloadConfig, raising
:class:`~tfs_async.testing.status.ServingStatus` with TF Serving's code and
message on failure. Running the models is the
:class:`~tfs_async.testing.prediction_service.PredictionService`'s job.

>>> import asyncio
>>> from tfs_async._proto import model_pb2
>>> from tfs_async.testing.models import PythonModel, signature
>>> double = signature(lambda t: {"y": t["x"] * 2}, inputs={"x": "DT_FLOAT"},
...                    outputs={"y": "DT_FLOAT"})
>>> async def demo():
...     models = ModelManager([PythonModel("m", {"serving_default": double})])
...     await models.start()
...     servable = models.resolve(model_pb2.ModelSpec(name="m"))
...     await models.stop()
...     return servable.name, servable.version
>>> asyncio.run(demo())
('m', 1)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfs_async._proto import (
    get_model_status_pb2,
    meta_graph_pb2,
    model_management_pb2,
    model_pb2,
    model_server_config_pb2,
)
from tfs_async.config import ConfigError, parse_model_server_config
from tfs_async.errors import StatusCode
from tfs_async.testing import config_rules as rules
from tfs_async.testing.models import ModelSource, PythonModel, Signature
from tfs_async.testing.saved_model import SavedModel
from tfs_async.testing.status import (
    ServingStatus,
    invalid_argument,
    not_found,
)
from tfs_async.testing.versions import LoadGate, LoadGates, VersionRecord, aspired_versions
from tfs_async.types import VersionState

__all__ = ["LoadGate", "LoadedVersion", "ModelManager"]

_log = logging.getLogger(__name__)

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig


@dataclass(frozen=True)
class LoadedVersion:
    """A servable version: what a request resolves to.

    Attributes:
        name, version: the model and the resolved numeric version.
        signatures: signature key -> ``SignatureDef`` (as metadata reports it).
        functions: signature key -> :class:`~tfs_async.testing.models.Signature` (to run it).
    """

    name: str
    version: int
    signatures: Mapping[str, meta_graph_pb2.SignatureDef]
    functions: Mapping[str, Signature]


@dataclass
class _Model:
    """One model's serving state: its source, policy, versions and labels."""

    name: str
    source: ModelSource
    config: ModelConfig
    records: dict[int, VersionRecord] = field(default_factory=dict)
    loaded: dict[int, LoadedVersion] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    in_config: bool = True
    failed: set[int] = field(default_factory=set)
    """Versions whose load failed and that are still aspired (not retried until unaspired)."""

    def latest_available(self) -> LoadedVersion | None:
        versions = [v for v, r in self.records.items() if r.state == VersionState.AVAILABLE]
        return self.loaded[max(versions)] if versions else None

    def available(self, version: int) -> LoadedVersion | None:
        record = self.records.get(version)
        if record is None or record.state != VersionState.AVAILABLE:
            return None
        return self.loaded.get(version)


class ModelManager:
    """The served models: TF Serving's ServerCore and ModelService, without prediction.

    It owns the model sources, the ``models.config`` in force, every version's
    state and the version labels; it resolves a ``ModelSpec`` to the loaded
    version a request runs on and answers GetModelStatus and ReloadConfig.

    Args:
        models: model sources by name (:class:`~tfs_async.testing.models.PythonModel`,
            :class:`~tfs_async.testing.saved_model.SavedModel`). Without a config each
            is served (Python models: all their versions; SavedModels: TF's default
            policy, the latest version). With a config, a config entry whose name
            matches a source uses that source (a SavedModel reads the entry's
            base_path); other entries are SavedModel directories at their base_path.
        config: a ``ModelServerConfig`` or its text (models.config format).
        config_file: a models.config path, read at :meth:`start` and by
            :meth:`poll_config_file`.
        allow_version_labels_for_unavailable_models: TF Serving's flag of that name.
        load_delay: seconds each version load takes (a simulated cost; for
            synchronisation in tests use :meth:`hold_loading` instead).
        file_system_poll_wait_seconds: TF Serving's flag (default 1): when > 0,
            re-scan every model's version directories this often and load or
            unload versions as the version policy says; 0 or negative, scan only
            at start, on reload and on :meth:`poll_config_file` (TF Serving's 0
            polls once; its negative, "reserved for testing", never polls and
            waits at startup forever, which the emulator does not copy). Tests
            trigger a scan deterministically with ``await`` :meth:`poll_file_system`.
        prefer_tflite_model: TF Serving's flag: config entries served from a
            base_path load a version's ``model.tflite``, when it has one, instead
            of its SavedModel (:mod:`tfs_async.testing.tflite_runtime`).
    """

    def __init__(
        self,
        models: Sequence[ModelSource] = (),
        *,
        config: ModelServerConfig | str | None = None,
        config_file: str | os.PathLike[str] | None = None,
        allow_version_labels_for_unavailable_models: bool = False,
        load_delay: float = 0.0,
        file_system_poll_wait_seconds: float = 1.0,
        prefer_tflite_model: bool = False,
    ) -> None:
        self.file_system_poll_wait_seconds = file_system_poll_wait_seconds
        self.prefer_tflite_model = prefer_tflite_model
        if config is not None and config_file is not None:
            raise ValueError("give config or config_file, not both")
        if load_delay < 0:
            raise ValueError(f"load_delay must be >= 0, got {load_delay}")
        self._sources: dict[str, ModelSource] = {}
        for source in models:
            if not isinstance(source, ModelSource):
                raise TypeError(
                    f"models must be ModelSource objects (PythonModel, SavedModel), "
                    f"got {type(source).__name__}"
                )
            if source.name in self._sources:
                raise ValueError(f"model {source.name!r} is given twice")
            self._sources[source.name] = source
        if isinstance(config, str):
            config = parse_model_server_config(config)
        self._initial_config = config
        self._config_file = os.fspath(config_file) if config_file is not None else None
        self.allow_version_labels_for_unavailable_models = (
            allow_version_labels_for_unavailable_models
        )
        self.load_delay = load_delay
        self._config = ModelServerConfig()
        self._models: dict[str, _Model] = {}
        self._load_gates = LoadGates()
        self._unload_gates = LoadGates()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._started = False
        self._file_text: str | None = None
        self.last_poll_error: ServingStatus | None = None
        """The error of the latest config-file poll that failed, else None."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def config(self) -> ModelServerConfig:
        """The config now in force (a copy)."""
        copy = ModelServerConfig()
        copy.CopyFrom(self._config)
        return copy

    async def start(self) -> None:
        """Load the initial versions; returns once they are AVAILABLE (or failed to load).

        Raises ServingStatus for an invalid initial config (like TF Serving,
        which then refuses to start).
        """
        if self._started:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._started = True
        self._reload_lock = asyncio.Lock()
        if self._config_file is not None:
            text = self._read_config_file()
            config = self._parse_config_text(text)
            self._file_text = text
        elif self._initial_config is not None:
            config = self._initial_config
        else:
            config = self._default_config()
        await self._reload(config)
        if self.file_system_poll_wait_seconds > 0:
            self._poller = asyncio.create_task(self._poll_file_system())

    async def _poll_file_system(self) -> None:
        while True:
            # A timer, not synchronisation: TF Serving rescans version directories on a period.
            await asyncio.sleep(self.file_system_poll_wait_seconds)
            await self.poll_file_system()

    async def stop(self) -> None:
        """Unload every version (UNLOADING -> END) and cancel background work."""
        self._load_gates.release_all()
        self._unload_gates.release_all()
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for model in self._models.values():
            for version in list(model.loaded):
                model.records[version].state = VersionState.END
            model.loaded.clear()
        self._started = False

    def hold_loading(self, name: str, version: int | None = None) -> LoadGate:
        """Hold loads of ``name`` (one version or all) in LOADING until the gate is released.

        ``await gate.wait_reached()`` returns once a load is held, so a test can
        observe LOADING (and NOT_FOUND from Predict) without sleeping.
        """
        return self._load_gates.add(name, version)

    def hold_unloading(self, name: str, version: int | None = None) -> LoadGate:
        """Hold unloads of ``name`` in UNLOADING until the gate is released."""
        return self._unload_gates.add(name, version)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until no background load or unload is running."""

        async def drain() -> None:
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

        await asyncio.wait_for(drain(), timeout)

    # ------------------------------------------------------------------ resolution

    def resolve(self, model_spec: model_pb2.ModelSpec) -> LoadedVersion:
        """The AVAILABLE version a ModelSpec addresses, or ServingStatus as TF Serving says it."""
        name = model_spec.name
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        model = self._models.get(name)
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version_label":
            label = model_spec.version_label
            if model is None or label not in model.labels:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            version = model.labels[label]
            found = model.available(version)
            if found is None:
                raise _servable_not_found(f"Specific({name}, {version})")
            return found
        if choice == "version":
            version = model_spec.version.value
            found = model.available(version) if model is not None else None
            if found is None:
                raise _servable_not_found(f"Specific({name}, {version})")
            return found
        latest = model.latest_available() if model is not None else None
        if latest is None:
            raise _servable_not_found(f"Latest({name})")
        return latest

    async def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """ModelService.GetModelStatus: states newest first; labels are ignored, as in TF."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        model = self._models.get(spec.name)
        records = model.records if model is not None else {}
        if not records:
            raise not_found(f"Could not find any versions of model {spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        if spec.HasField("version"):
            record = records.get(spec.version.value)
            if record is None:
                raise not_found(
                    f"Could not find version {spec.version.value} of model {spec.name}",
                )
            response.model_version_status.append(record.to_proto())
            return response
        for version in sorted(records, reverse=True):
            response.model_version_status.append(records[version].to_proto())
        return response

    # ------------------------------------------------------------------ config

    async def reload_config(
        self, request: model_management_pb2.ReloadConfigRequest
    ) -> model_management_pb2.ReloadConfigResponse:
        """ModelService.HandleReloadConfigRequest.

        On success returns an OK status. On failure raises ServingStatus (TF
        Serving returns the error as the RPC status) and keeps the previous config.
        """
        if request.config.WhichOneof("config") != "model_config_list":
            # model_service_impl.cc: only a ModelConfigList reaches ServerCore::ReloadConfig.
            raise invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported",
            )
        await self._reload(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0  # type: ignore[assignment]
        return response

    async def poll_config_file(self) -> None:
        """Re-read the config file once and apply it if it changed.

        A file that cannot be read, parsed or applied keeps the previous config;
        the error is logged, kept in :attr:`last_poll_error` and raised.
        Also re-scans every model's versions (new or removed version directories).
        """
        if self._config_file is None:
            await self.refresh()
            return
        try:
            text = self._read_config_file()
            if text != self._file_text:
                config = self._parse_config_text(text)
                await self._reload(config)
                self._file_text = text
            else:
                await self.refresh()
        except ServingStatus as exc:
            self.last_poll_error = exc
            _log.error("model config file %s: %s", self._config_file, exc.message)
            raise
        self.last_poll_error = None

    async def refresh(self) -> None:
        """Start a re-scan of every configured model's versions; do not wait for it.

        The loads and unloads run in the background (:meth:`wait_idle` waits for
        them); :meth:`poll_file_system` is the same scan, awaited.
        """
        for model in self._models.values():
            if model.in_config:
                self._reconcile_in_background(model)

    async def poll_file_system(self) -> None:
        """One file-system poll, as TF Serving runs every ``--file_system_poll_wait_seconds``.

        Lists every configured model's version directories, loads the versions
        its version policy aspires to that are not loaded yet (latest N, all or
        specific), and unloads the versions it no longer aspires to once an
        aspired version is AVAILABLE (TF's availability-preserving policy: a
        model keeps serving while its new version loads, and keeps its old
        version when the new one fails to load). Returns when those loads and
        unloads are done. A version that failed to load is not retried while it
        stays aspired (TF Serving retries only within the load itself).

        >>> import asyncio
        >>> from tfs_async.testing.models import PythonModel, signature
        >>> sig = signature(lambda t: {"y": t["x"]}, inputs={"x": "DT_FLOAT"},
        ...                 outputs={"y": "DT_FLOAT"})
        >>> async def demo():
        ...     model = PythonModel("m", versions={1: {"serving_default": sig}})
        ...     models = ModelManager([model], file_system_poll_wait_seconds=0)
        ...     await models.start()
        ...     model.add_version(2, {"serving_default": sig})
        ...     await models.poll_file_system()
        ...     latest = models.resolve(model_pb2.ModelSpec(name="m")).version
        ...     await models.stop()
        ...     return latest
        >>> asyncio.run(demo())
        2
        """
        await asyncio.gather(*(self._reconcile(m) for m in self._models.values() if m.in_config))

    # ------------------------------------------------------------------ internals

    def _read_config_file(self) -> str:
        assert self._config_file is not None
        try:
            with open(self._config_file, encoding="utf-8") as f:
                return f.read()
        except OSError as exc:
            raise not_found(
                f"Could not read model config file {self._config_file}: {exc.strerror}",
            ) from None

    def _parse_config_text(self, text: str) -> ModelServerConfig:
        try:
            return parse_model_server_config(text, path=self._config_file)
        except ConfigError as exc:
            raise invalid_argument(
                f"Invalid protobuf file: '{self._config_file}': {exc.message}",
            ) from None

    def _default_config(self) -> ModelServerConfig:
        config = ModelServerConfig()
        config.model_config_list.SetInParent()
        for source in self._sources.values():
            entry = config.model_config_list.config.add(
                name=source.name, model_platform="tensorflow"
            )
            if isinstance(source, SavedModel):
                entry.base_path = str(source.base_path)
            elif isinstance(source, PythonModel):
                # The versions a Python model defines are the ones its author wants served.
                entry.model_version_policy.all.SetInParent()
        return config

    def _source_for(self, entry: ModelConfig) -> ModelSource:
        known = self._sources.get(entry.name)
        if known is not None:
            return known.for_config(entry.base_path)
        if not entry.base_path:
            raise invalid_argument(
                f"Model {entry.name} has no base_path in its config and no model of that "
                f"name is registered",
            )
        return SavedModel(entry.name, entry.base_path, prefer_tflite_model=self.prefer_tflite_model)

    def _validate(self, config: ModelServerConfig) -> dict[str, tuple[ModelConfig, ModelSource]]:
        """The config's models and their sources, once ServerCore::ReloadConfig's checks pass."""
        rules.check_transition(config, self._config)
        listed = config.model_config_list.config
        rules.check_names_and_paths(listed, registered=self._sources)
        rules.check_platforms(listed, self._config.model_config_list.config)
        rules.check_version_labels(
            listed,
            labels_of=self._labels_in_force,
            is_available=self._is_available,
            allow_unavailable=self.allow_version_labels_for_unavailable_models,
        )
        entries: dict[str, tuple[ModelConfig, ModelSource]] = {}
        for entry in listed:
            rules.check_entry(entry)
            source = self._source_for(entry)
            try:
                source.available_versions()
            except ServingStatus:
                raise
            except Exception as exc:
                raise not_found(
                    f"Could not list versions of model {entry.name}: {exc}",
                ) from None
            entries[entry.name] = (entry, source)
        return entries

    def _labels_in_force(self, name: str) -> Mapping[str, int]:
        model = self._models.get(name)
        return model.labels if model is not None and model.in_config else {}

    def _is_available(self, name: str, version: int) -> bool:
        model = self._models.get(name)
        return model is not None and model.available(version) is not None

    async def _reload(self, config: ModelServerConfig) -> None:
        if self._reload_lock is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() first")
        async with self._reload_lock:
            entries = self._validate(config)
            new_models: list[_Model] = []
            for name, model in self._models.items():
                if name not in entries and model.in_config:
                    model.in_config = False
                    model.labels.clear()
                    self._spawn(self._unload_all(model))
            for name, (entry, source) in entries.items():
                old = self._models.get(name)
                if old is None or not old.in_config:
                    records = old.records if old is not None else {}
                    model = _Model(name, source, entry, records=records)
                    self._models[name] = model
                    new_models.append(model)
                else:
                    model = old
                    model.source = source
                    model.config = entry
                    self._reconcile_in_background(model)
                model.labels = dict(entry.version_labels)
            stored = ModelServerConfig()
            stored.CopyFrom(config)
            self._config = stored
            # Like TF Serving, wait until newly added models have finished loading.
            if new_models:
                await asyncio.gather(*(self._reconcile(m) for m in new_models))

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_task_failure)

    def _reconcile_in_background(self, model: _Model) -> None:
        self._spawn(self._reconcile(model))

    async def _reconcile(self, model: _Model) -> None:
        """Load aspired versions, then unload the others (availability first, as TF)."""
        try:
            available = model.source.available_versions()
        except Exception as exc:
            _log.error("model %s: cannot list versions: %s", model.name, exc)
            return
        aspired = set(aspired_versions(model.config.model_version_policy, available))
        model.failed &= aspired
        active = (VersionState.START, VersionState.LOADING, VersionState.AVAILABLE)
        to_load = [
            v
            for v in sorted(aspired)
            if v not in model.failed
            and (v not in model.records or model.records[v].state == VersionState.END)
        ]
        for v in to_load:
            model.records[v] = VersionRecord(v, VersionState.START)
        await asyncio.gather(*(self._load(model, v) for v in to_load))
        to_unload = sorted(
            v for v, r in model.records.items() if v not in aspired and r.state in active
        )
        if aspired and not any(model.available(v) is not None for v in aspired):
            # AvailabilityPreservingPolicy: with no aspired version serving, keep the
            # newest unaspired one that is AVAILABLE so that the model keeps serving.
            serving = [v for v in to_unload if model.available(v) is not None]
            if serving:
                to_unload.remove(serving[-1])
        await asyncio.gather(*(self._unload(model, v) for v in to_unload))

    async def _load(self, model: _Model, version: int) -> None:
        record = model.records[version]
        record.state = VersionState.LOADING
        try:
            await self._load_gates.pass_through(model.name, version)
            if self.load_delay:
                # Simulated load cost; tests synchronise with hold_loading, not this.
                await asyncio.sleep(self.load_delay)
            functions = await model.source.load(version)
        except asyncio.CancelledError:
            record.state = VersionState.END
            raise
        except ServingStatus as exc:
            _fail_record(record, exc.code, exc.message)
            model.failed.add(version)
            return
        except Exception as exc:
            _fail_record(record, StatusCode.UNKNOWN, str(exc) or type(exc).__name__)
            model.failed.add(version)
            return
        if not model.in_config or record.state != VersionState.LOADING:
            record.state = VersionState.END
            return
        model.loaded[version] = LoadedVersion(
            name=model.name,
            version=version,
            signatures={k: s.to_proto() for k, s in functions.items()},
            functions=dict(functions),
        )
        record.state = VersionState.AVAILABLE

    async def _unload(self, model: _Model, version: int) -> None:
        record = model.records[version]
        record.state = VersionState.UNLOADING
        try:
            await self._unload_gates.pass_through(model.name, version)
        finally:
            model.loaded.pop(version, None)
            record.state = VersionState.END

    async def _unload_all(self, model: _Model) -> None:
        active = (VersionState.START, VersionState.LOADING, VersionState.AVAILABLE)
        versions = [v for v, r in model.records.items() if r.state in active]
        await asyncio.gather(*(self._unload(model, v) for v in versions))


# ---------------------------------------------------------------------- helpers


def _log_task_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("background model load/unload failed", exc_info=task.exception())


def _servable_not_found(request: str) -> ServingStatus:
    return not_found(f"Servable not found for request: {request}")


def _fail_record(record: VersionRecord, code: StatusCode, message: str) -> None:
    record.state = VersionState.END
    record.error_code = code if code != StatusCode.OK else StatusCode.UNKNOWN
    record.error_message = message
