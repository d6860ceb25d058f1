"""The emulator's core: TF Serving's ServerCore and prediction service, proto in, proto out.

:class:`ServerCore` owns the served models (from :class:`~tfs_async.testing.models.ModelSource`
objects and/or a ``models.config``), their version states and labels, and
implements every RPC as TF Serving does, raising
:class:`~tfs_async.testing.status.ServingStatus` with TF Serving's code and
message on failure. The network layer (gRPC and REST services) sits on top.

>>> import asyncio, numpy as np
>>> from tfs_async._proto import predict_pb2
>>> from tfs_async.testing.models import PythonModel, signature
>>> double = signature(lambda t: {"y": t["x"] * 2}, inputs={"x": "DT_FLOAT"},
...                    outputs={"y": "DT_FLOAT"})
>>> async def demo():
...     core = ServerCore([PythonModel("m", {"serving_default": double})])
...     await core.start()
...     req = predict_pb2.PredictRequest()
...     req.model_spec.name = "m"
...     req.inputs["x"].dtype = 1
...     req.inputs["x"].float_val.append(21.0)
...     resp = await core.predict(req)
...     await core.stop()
...     return list(resp.outputs["y"].float_val), resp.model_spec.version.value
>>> asyncio.run(demo())
([42.0], 1)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    meta_graph_pb2,
    model_management_pb2,
    model_pb2,
    model_server_config_pb2,
    predict_pb2,
    regression_pb2,
    tensor_pb2,
    types_pb2,
)
from tfs_async.codec.tensor import decode_tensor, encode_tensor
from tfs_async.config import ConfigError, parse_model_server_config
from tfs_async.errors import InvalidInputError, StatusCode, TFServingError
from tfs_async.testing.models import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    ModelSource,
    PythonModel,
    Signature,
    dtype_short_name,
)
from tfs_async.testing.saved_model import SavedModel
from tfs_async.testing.status import ServingStatus
from tfs_async.testing.versions import LoadGate, LoadGates, VersionRecord, aspired_versions
from tfs_async.types import DEFAULT_SIGNATURE, VersionState

__all__ = ["LoadGate", "LoadedVersion", "ServerCore"]

_log = logging.getLogger(__name__)

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

_SIGNATURE_DEF_FIELD = "signature_def"


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

    def latest_available(self) -> LoadedVersion | None:
        versions = [v for v, r in self.records.items() if r.state == VersionState.AVAILABLE]
        return self.loaded[max(versions)] if versions else None

    def available(self, version: int) -> LoadedVersion | None:
        record = self.records.get(version)
        if record is None or record.state != VersionState.AVAILABLE:
            return None
        return self.loaded.get(version)


class ServerCore:
    """TF Serving's ServerCore plus its prediction and model services.

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
        tensor_content: Predict outputs in ``tensor_content`` instead of the typed
            ``*_val`` fields (``--enable_serialization_as_tensor_content``).
        allow_version_labels_for_unavailable_models: TF Serving's flag of that name.
        load_delay: seconds each version load takes (a simulated cost; for
            synchronisation in tests use :meth:`hold_loading` instead).
        file_system_poll_wait_seconds: when > 0, re-scan every model's versions
            this often (TF Serving's flag, whose default is 1); 0 scans only at
            start, reload and :meth:`poll_config_file` (call :meth:`refresh` to scan).
    """

    def __init__(
        self,
        models: Sequence[ModelSource] = (),
        *,
        config: ModelServerConfig | str | None = None,
        config_file: str | os.PathLike[str] | None = None,
        tensor_content: bool = False,
        allow_version_labels_for_unavailable_models: bool = False,
        load_delay: float = 0.0,
        file_system_poll_wait_seconds: float = 0.0,
    ) -> None:
        if file_system_poll_wait_seconds < 0:
            raise ValueError("file_system_poll_wait_seconds must be >= 0")
        self.file_system_poll_wait_seconds = file_system_poll_wait_seconds
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
        self.tensor_content = tensor_content
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
            raise RuntimeError("ServerCore already started")
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
            await self.refresh()

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
            raise ServingStatus(StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
        model = self._models.get(name)
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version_label":
            label = model_spec.version_label
            if model is None or label not in model.labels:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}"
                )
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

    # ------------------------------------------------------------------ prediction

    async def predict(
        self,
        request: predict_pb2.PredictRequest,
        *,
        timeout: float | None = None,
        tensor_content: bool | None = None,
    ) -> predict_pb2.PredictResponse:
        """PredictionService.Predict (predict_impl.cc / predict_util.cc)."""
        if not request.HasField("model_spec"):
            raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        servable = self.resolve(request.model_spec)
        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = servable.functions.get(key)
        if sig is None:
            raise ServingStatus(
                StatusCode.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.'
            )
        _check_input_aliases(request.inputs.keys(), sig.inputs.keys())
        outputs = _output_aliases(request.output_filter, sig.outputs.keys())
        inputs = _decode_inputs(request.inputs, sig)
        result = await self._run(servable, key, sig, inputs, timeout)
        as_content = self.tensor_content if tensor_content is None else tensor_content
        response = predict_pb2.PredictResponse()
        for alias in outputs:
            value = _output(result, alias, servable, key, sig)
            response.outputs[alias].CopyFrom(
                encode_tensor(value, name=alias, as_content=as_content)
            )
        _fill_model_spec(response.model_spec, servable, key)
        return response

    async def classify(
        self, request: classification_pb2.ClassificationRequest, *, timeout: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        """PredictionService.Classify (classifier.cc)."""
        if not request.HasField("model_spec"):
            raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        servable = self.resolve(request.model_spec)
        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = _signature_for(servable, key, CLASSIFY_METHOD, "classification")
        result = await self._classify(servable, key, sig, request.input, timeout)
        response = classification_pb2.ClassificationResponse()
        response.result.CopyFrom(result)
        _fill_model_spec(response.model_spec, servable, key)
        return response

    async def regress(
        self, request: regression_pb2.RegressionRequest, *, timeout: float | None = None
    ) -> regression_pb2.RegressionResponse:
        """PredictionService.Regress (regressor.cc)."""
        if not request.HasField("model_spec"):
            raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        servable = self.resolve(request.model_spec)
        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = _signature_for(servable, key, REGRESS_METHOD, "regression")
        result = await self._regress(servable, key, sig, request.input, timeout)
        response = regression_pb2.RegressionResponse()
        response.result.CopyFrom(result)
        _fill_model_spec(response.model_spec, servable, key)
        return response

    async def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest, *, timeout: float | None = None
    ) -> inference_pb2.MultiInferenceResponse:
        """PredictionService.MultiInference (multi_inference.cc): several signatures, one input."""
        if not request.tasks:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT, "MultiInferenceRequest must have at least one task."
            )
        first = request.tasks[0].model_spec
        seen: set[str] = set()
        for task in request.tasks:
            if task.model_spec.name != first.name:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT,
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
                )
            sig_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if sig_name in seen:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT, f"Duplicate evaluation of signature: {sig_name}"
                )
            seen.add(sig_name)
        servable = self.resolve(first)
        response = inference_pb2.MultiInferenceResponse()
        for task in request.tasks:
            key = task.model_spec.signature_name or DEFAULT_SIGNATURE
            sig = servable.functions.get(key)
            if sig is None:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT,
                    f"Requested signature not found in model graph: {key}",
                )
            result = response.results.add()
            if task.method_name == CLASSIFY_METHOD:
                _check_method(sig, CLASSIFY_METHOD, "classification")
                result.classification_result.CopyFrom(
                    await self._classify(servable, key, sig, request.input, timeout)
                )
            elif task.method_name == REGRESS_METHOD:
                _check_method(sig, REGRESS_METHOD, "regression")
                result.regression_result.CopyFrom(
                    await self._regress(servable, key, sig, request.input, timeout)
                )
            else:
                raise ServingStatus(
                    StatusCode.UNIMPLEMENTED,
                    f"Unsupported signature method_name: {task.method_name}",
                )
            _fill_model_spec(result.model_spec, servable, key)
        return response

    async def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """PredictionService.GetModelMetadata: the signature_def map, packed by hand."""
        if not request.HasField("model_spec"):
            raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        if not request.metadata_field:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                "GetModelMetadataRequest must specify at least one metadata_field",
            )
        for name in request.metadata_field:
            if name != _SIGNATURE_DEF_FIELD:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT, f"Metadata field {name} is not supported"
                )
        servable = self.resolve(request.model_spec)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for key, proto in servable.signatures.items():
            sig_map.signature_def[key].CopyFrom(proto)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        packed = response.metadata[_SIGNATURE_DEF_FIELD]
        # Any.Pack would write our proto package into the type URL; TF clients expect TF's.
        packed.type_url = _methods.SIGNATURE_DEF_MAP_TYPE_URL
        packed.value = sig_map.SerializeToString(deterministic=True)
        return response

    async def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """ModelService.GetModelStatus: states newest first; labels are ignored, as in TF."""
        if not request.HasField("model_spec"):
            raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        spec = request.model_spec
        model = self._models.get(spec.name)
        records = model.records if model is not None else {}
        if not records:
            raise ServingStatus(
                StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        response = get_model_status_pb2.GetModelStatusResponse()
        if spec.HasField("version"):
            record = records.get(spec.version.value)
            if record is None:
                raise ServingStatus(
                    StatusCode.NOT_FOUND,
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
        """Re-scan what versions exist for every configured model and apply the policies.

        TF Serving does this every ``--file_system_poll_wait_seconds``. New models
        are not waited for here; call :meth:`wait_idle` to wait for the loads.
        """
        for model in self._models.values():
            if model.in_config:
                self._reconcile_in_background(model)

    # ------------------------------------------------------------------ internals

    def _read_config_file(self) -> str:
        assert self._config_file is not None
        try:
            with open(self._config_file, encoding="utf-8") as f:
                return f.read()
        except OSError as exc:
            raise ServingStatus(
                StatusCode.NOT_FOUND,
                f"Could not read model config file {self._config_file}: {exc.strerror}",
            ) from None

    def _parse_config_text(self, text: str) -> ModelServerConfig:
        try:
            return parse_model_server_config(text, path=self._config_file)
        except ConfigError as exc:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
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
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                f"Model {entry.name} has no base_path in its config and no model of that "
                f"name is registered",
            )
        return SavedModel(entry.name, entry.base_path)

    def _validate(self, config: ModelServerConfig) -> dict[str, tuple[ModelConfig, ModelSource]]:
        kind = config.WhichOneof("config")
        if kind == "custom_model_config":
            raise ServingStatus(
                StatusCode.UNIMPLEMENTED, "custom_model_config is not supported by this server"
            )
        old_kind = self._config.WhichOneof("config")
        if old_kind is not None and kind is not None and kind != old_kind:
            raise ServingStatus(
                StatusCode.FAILED_PRECONDITION,
                "Cannot transition to requested config. It is only legal to transition from "
                "one ModelConfigList to another.",
            )
        entries: dict[str, tuple[ModelConfig, ModelSource]] = {}
        for entry in config.model_config_list.config:
            if not entry.name:
                raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Model config has an empty name")
            if entry.name in entries:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT,
                    f"Illegal to list model {entry.name} multiple times in config list",
                )
            if entry.model_platform not in ("", "tensorflow"):
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT,
                    f"Model {entry.name} requested unsupported platform {entry.model_platform}",
                )
            source = self._source_for(entry)
            try:
                source.available_versions()
            except ServingStatus:
                raise
            except Exception as exc:
                raise ServingStatus(
                    StatusCode.NOT_FOUND,
                    f"Could not list versions of model {entry.name}: {exc}",
                ) from None
            entries[entry.name] = (entry, source)
        for name, (entry, source) in entries.items():
            current = self._models.get(name)
            is_new = current is None or not current.in_config
            # A new model is loaded before its labels are set (TF waits for it first).
            will_load = (
                set(aspired_versions(entry.model_version_policy, source.available_versions()))
                if is_new
                else set()
            )
            for version in entry.version_labels.values():
                if self.allow_version_labels_for_unavailable_models:
                    continue
                if is_new and version in will_load:
                    continue
                if current is None or is_new or current.available(version) is None:
                    raise _label_unavailable(name, version)
        return entries

    async def _reload(self, config: ModelServerConfig) -> None:
        if self._reload_lock is None:
            raise RuntimeError("ServerCore is not started: call start() first")
        async with self._reload_lock:
            entries = self._validate(config)
            previous = self._config
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
            failed = self._unavailable_label(new_models)
            if failed is not None:
                # A labelled version of a new model failed to load: drop the new models.
                for model in new_models:
                    model.in_config = False
                    model.labels.clear()
                    self._spawn(self._unload_all(model))
                self._config = previous
                raise failed

    def _unavailable_label(self, models: Sequence[_Model]) -> ServingStatus | None:
        if self.allow_version_labels_for_unavailable_models:
            return None
        for model in models:
            for version in model.labels.values():
                if model.available(version) is None:
                    return _label_unavailable(model.name, version)
        return None

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
        active = (VersionState.START, VersionState.LOADING, VersionState.AVAILABLE)
        to_load = [
            v
            for v in sorted(aspired)
            if v not in model.records or model.records[v].state == VersionState.END
        ]
        for v in to_load:
            model.records[v] = VersionRecord(v, VersionState.START)
        await asyncio.gather(*(self._load(model, v) for v in to_load))
        to_unload = [v for v, r in model.records.items() if v not in aspired and r.state in active]
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
            return
        except Exception as exc:
            _fail_record(record, StatusCode.UNKNOWN, str(exc) or type(exc).__name__)
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

    async def _run(
        self,
        servable: LoadedVersion,
        key: str,
        sig: Signature,
        inputs: dict[str, npt.NDArray[Any]],
        timeout: float | None,
    ) -> dict[str, npt.NDArray[Any]]:
        try:
            return await asyncio.wait_for(sig.call(inputs), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise ServingStatus(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except ServingStatus:
            raise
        except TFServingError as exc:
            raise ServingStatus(exc.code, exc.message) from None
        except Exception as exc:
            # A failing model function is a failed Session::Run: INTERNAL with its text.
            raise ServingStatus(
                StatusCode.INTERNAL,
                f"Model {servable.name} version {servable.version} signature {key}: "
                f"{type(exc).__name__}: {exc}",
            ) from None

    async def _classify(
        self,
        servable: LoadedVersion,
        key: str,
        sig: Signature,
        request_input: input_pb2.Input,
        timeout: float | None,
    ) -> classification_pb2.ClassificationResult:
        alias = _example_input_alias(sig, "classification", "inputs")
        if "classes" not in sig.outputs and "scores" not in sig.outputs:
            raise ServingStatus(
                StatusCode.FAILED_PRECONDITION,
                'Expected classification signature outputs to contain at least one of "classes" '
                f'or "scores". Signature was: {key}',
            )
        batch = _serialized_examples(request_input)
        result = await self._run(servable, key, sig, {alias: batch}, timeout)
        n = len(batch)
        classes = result.get("classes") if "classes" in sig.outputs else None
        scores = result.get("scores") if "scores" in sig.outputs else None
        if classes is None and scores is None:
            raise ServingStatus(
                StatusCode.INTERNAL,
                f"Model {servable.name} signature {key} returned neither classes nor scores",
            )
        for label, tensor in (("classes", classes), ("scores", scores)):
            if tensor is None:
                continue
            if tensor.ndim != 2:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT,
                    f"Expected Tensor shape: [batch_size num_classes] but got {_shape(tensor)}",
                )
            if tensor.shape[0] != n:
                raise ServingStatus(
                    StatusCode.INVALID_ARGUMENT,
                    f"Expected {label} output batch size of {n}. Got: {tensor.shape[0]}",
                )
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} "
                f"vs. {scores.shape[1]}",
            )
        num_classes = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
        out = classification_pb2.ClassificationResult()
        for i in range(n):
            item = out.classifications.add()
            for c in range(num_classes):
                cls = item.classes.add()
                if classes is not None:
                    label_value = classes[i, c]
                    cls.label = (
                        label_value.decode("utf-8", "replace")
                        if isinstance(label_value, bytes)
                        else str(label_value)
                    )
                if scores is not None:
                    cls.score = float(scores[i, c])
        return out

    async def _regress(
        self,
        servable: LoadedVersion,
        key: str,
        sig: Signature,
        request_input: input_pb2.Input,
        timeout: float | None,
    ) -> regression_pb2.RegressionResult:
        alias = _example_input_alias(sig, "regression", "inputs")
        if len(sig.outputs) != 1:
            raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Expected one output Tensor.")
        if "outputs" not in sig.outputs:
            raise ServingStatus(
                StatusCode.FAILED_PRECONDITION,
                f"No regression outputs found in SignatureDef: {key}",
            )
        batch = _serialized_examples(request_input)
        result = await self._run(servable, key, sig, {alias: batch}, timeout)
        values = _output(result, "outputs", servable, key, sig)
        n = len(batch)
        if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
                f"but got {_shape(values)}",
            )
        if values.shape[0] != n:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                f"Input batch size did not match output batch size: {n} vs. {values.shape[0]}",
            )
        out = regression_pb2.RegressionResult()
        for v in values.reshape(-1):
            out.regressions.add(value=float(v))
        return out


# ---------------------------------------------------------------------- helpers


def _log_task_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("background model load/unload failed", exc_info=task.exception())


def _label_unavailable(name: str, version: int) -> ServingStatus:
    return ServingStatus(
        StatusCode.FAILED_PRECONDITION,
        f"Request to assign label to version {version} of model {name}, "
        f"which is not currently available for inference",
    )


def _servable_not_found(request: str) -> ServingStatus:
    return ServingStatus(StatusCode.NOT_FOUND, f"Servable not found for request: {request}")


def _fail_record(record: VersionRecord, code: StatusCode, message: str) -> None:
    record.state = VersionState.END
    record.error_code = code if code != StatusCode.OK else StatusCode.UNKNOWN
    record.error_message = message


def _fill_model_spec(spec: model_pb2.ModelSpec, servable: LoadedVersion, key: str) -> None:
    spec.name = servable.name
    spec.version.value = servable.version
    spec.signature_name = key


def _check_method(sig: Signature, method: str, kind: str) -> None:
    if sig.method_name != method:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT,
            f"Expected {kind} signature method_name to be {method}. Was: {sig.method_name}",
        )


def _signature_for(servable: LoadedVersion, key: str, method: str, kind: str) -> Signature:
    sig = servable.functions.get(key)
    if sig is None:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT, f"No signature was found with the name: {key}"
        )
    _check_method(sig, method, kind)
    return sig


def _example_input_alias(sig: Signature, kind: str, alias: str) -> str:
    if len(sig.inputs) != 1:
        raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Expected one input Tensor.")
    if alias not in sig.inputs:
        raise ServingStatus(
            StatusCode.FAILED_PRECONDITION, f"No {kind} inputs found in SignatureDef"
        )
    return alias


def _serialized_examples(request_input: input_pb2.Input) -> npt.NDArray[np.object_]:
    """The request's examples as TF feeds them: one serialized tf.Example per row.

    With a context, each row is the context's bytes followed by the example's:
    protobuf merge semantics, so the example's own features win.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        rows = [ex.SerializeToString() for ex in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        lc = request_input.example_list_with_context
        context = lc.context.SerializeToString()
        rows = [context + ex.SerializeToString() for ex in lc.examples]
    else:
        rows = []
    if not rows:
        raise ServingStatus(StatusCode.INVALID_ARGUMENT, "Input is empty.")
    batch = np.empty(len(rows), dtype=object)
    batch[:] = rows
    return batch


def _join(names: Any) -> str:
    return ",".join(sorted(names))


def _check_input_aliases(sent: Any, expected: Any) -> None:
    sent_set, expected_set = set(sent), set(expected)
    extra, missing = sent_set - expected_set, expected_set - sent_set
    if extra or missing:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT,
            f"input size does not match signature: {len(sent_set)}!={len(expected_set)} "
            f"len({{{_join(sent_set)}}}) != len({{{_join(expected_set)}}}). "
            f"Sent extra: {{{_join(extra)}}}. Missing but required: {{{_join(missing)}}}.",
        )


def _output_aliases(output_filter: Sequence[str], outputs: Any) -> list[str]:
    known = list(outputs)
    if not output_filter:
        return sorted(known)
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in known:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{_join(known)}}}.",
            )
        if alias in seen:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT, f"duplicate output tensor alias: {alias}"
            )
        seen.add(alias)
    return list(output_filter)


def _decode_inputs(
    inputs: Mapping[str, tensor_pb2.TensorProto], sig: Signature
) -> dict[str, npt.NDArray[Any]]:
    decoded: dict[str, npt.NDArray[Any]] = {}
    # TF feeds inputs in alias order; its dtype error names the feed's index.
    for index, alias in enumerate(sorted(inputs)):
        proto = inputs[alias]
        expected = sig.inputs[alias].dtype
        if proto.dtype != expected:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                f"Expects arg[{index}] to be {_dtype_text(expected)} but "
                f"{_dtype_text(proto.dtype)} is provided",
            )
        try:
            decoded[alias] = decode_tensor(proto, name=alias, error=InvalidInputError)
        except TFServingError:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT, f"tensor parsing error: {alias}"
            ) from None
    return decoded


def _dtype_text(dtype: int) -> str:
    try:
        return dtype_short_name(dtype)
    except ValueError:
        return f"unknown dtype {dtype}"


def _shape(value: npt.NDArray[Any]) -> str:
    return "[" + ",".join(str(d) for d in value.shape) + "]"


def _output(
    result: Mapping[str, npt.NDArray[Any]],
    alias: str,
    servable: LoadedVersion,
    key: str,
    sig: Signature,
) -> npt.NDArray[Any]:
    """An output the function returned, in the signature's declared dtype."""
    if alias not in result:
        raise ServingStatus(
            StatusCode.INTERNAL,
            f"Model {servable.name} version {servable.version} signature {key}: the function "
            f"returned no output {alias!r} (returned {sorted(result)})",
        )
    value = np.asarray(result[alias])
    declared = sig.outputs[alias].dtype if alias in sig.outputs else None
    if declared is None or declared == types_pb2.DT_STRING:
        return value
    from tfs_async.codec import dtypes

    try:
        want = dtypes.to_numpy_dtype(declared, name=alias)
        if value.dtype != want:
            if value.dtype.kind in "OSU":
                raise TypeError(f"got {value.dtype} values")
            value = value.astype(want)
    except (TypeError, ValueError, TFServingError) as exc:
        raise ServingStatus(
            StatusCode.INTERNAL,
            f"Model {servable.name} version {servable.version} signature {key}: output "
            f"{alias!r} must be {_dtype_text(declared)}: {exc}",
        ) from None
    return value
