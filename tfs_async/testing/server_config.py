"""The text-format files tensorflow_model_server reads besides models.config.

``--batching_parameters_file`` (``BatchingParameters``), ``--monitoring_config_file``
(``MonitoringConfig``) and ``--ssl_config_file`` (``SSLConfig``) are protobuf text.
Their messages are built here from hand-written descriptors with TF Serving's
field names and numbers (``servables/tensorflow/session_bundle_config.proto``,
``config/monitoring_config.proto``, ``config/ssl_config.proto``) in a private
pool, so the files parse with protobuf's own text parser and a file TF Serving
refuses is refused here too, with its message (``util/proto_util.h``):

>>> import tempfile
>>> with tempfile.NamedTemporaryFile("w", suffix=".pbtxt", delete=False) as f:
...     _ = f.write("max_batch_size { value: 8 } batch_timeout_micros { value: 500 }")
>>> read_batching_parameters(f.name).max_batch_size
8
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

from tfs_async.errors import StatusCode
from tfs_async.testing.status import ServingStatus

__all__ = [
    "DEFAULT_PROMETHEUS_PATH",
    "BatchingParameters",
    "SslConfig",
    "read_batching_parameters",
    "read_prometheus_path",
    "read_ssl_config",
]

_log = logging.getLogger("tfs_async.testing")

#: PrometheusExporter::kPrometheusPath (util/prometheus_exporter.cc).
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"

_F = descriptor_pb2.FieldDescriptorProto


@functools.cache
def _messages() -> dict[str, Any]:
    wrappers = descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="tfs_async_server_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[wrappers.name],
    )

    def add(message: Any, name: str, number: int, kind: int, type_name: str = "") -> None:
        field = message.field.add(name=name, number=number)
        if kind == -1:  # repeated int64
            field.type, field.label = _F.TYPE_INT64, _F.LABEL_REPEATED
        else:
            field.type, field.label = kind, _F.LABEL_OPTIONAL
        if type_name:
            field.type_name = type_name

    batching = file.message_type.add(name="BatchingParameters")
    int64 = ".google.protobuf.Int64Value"
    for name, number in (
        ("max_batch_size", 1),
        ("batch_timeout_micros", 2),
        ("max_enqueued_batches", 3),
        ("num_batch_threads", 4),
        ("max_execution_batch_size", 9),
    ):
        add(batching, name, number, _F.TYPE_MESSAGE, int64)
    add(batching, "thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue")
    add(batching, "enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, ".google.protobuf.BoolValue")
    add(batching, "allowed_batch_sizes", 6, -1)
    add(batching, "pad_variable_length_inputs", 7, _F.TYPE_BOOL)

    prometheus = file.message_type.add(name="PrometheusConfig")
    add(prometheus, "enable", 1, _F.TYPE_BOOL)
    add(prometheus, "path", 2, _F.TYPE_STRING)
    monitoring = file.message_type.add(name="MonitoringConfig")
    add(monitoring, "prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig")

    ssl = file.message_type.add(name="SSLConfig")
    add(ssl, "server_key", 1, _F.TYPE_STRING)
    add(ssl, "server_cert", 2, _F.TYPE_STRING)
    add(ssl, "custom_ca", 3, _F.TYPE_STRING)
    add(ssl, "client_verify", 4, _F.TYPE_BOOL)

    pool: Any = descriptor_pool.DescriptorPool()  # protobuf ships this class untyped
    pool.Add(wrappers)
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"tensorflow.serving.{name}")
        )
        for name in ("BatchingParameters", "MonitoringConfig", "SSLConfig")
    }


def _read(path: str, message_name: str) -> Any:
    """ParseProtoTextFile: NOT_FOUND for a missing file, INVALID_ARGUMENT for bad text."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ServingStatus(StatusCode.NOT_FOUND, f"{path}; {exc.strerror}") from None
    message = _messages()[message_name]()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        log_text_format_error(message.DESCRIPTOR.full_name, exc)
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT, f"Invalid protobuf file: '{path}'"
        ) from None
    return message


def log_text_format_error(message_type: str, error: text_format.ParseError) -> None:
    """Log the line protobuf's C++ text parser logs (TF Serving's stderr shows it)."""
    detail = str(error).replace("tfs_async.tensorflow.", "tensorflow.")
    where = f"{error.GetLine()}:{error.GetColumn()}"
    if detail.startswith(where):
        detail = detail[len(where) :].lstrip(" :")
    _log.error("Error parsing text-format %s: %s: %s", message_type, where, detail)


@dataclass(frozen=True)
class BatchingParameters:
    """``BatchingParameters`` with the shared batch scheduler's defaults filled in.

    Defaults (TF's ``SharedBatchScheduler`` options): ``max_batch_size`` 1000,
    ``batch_timeout_micros`` 0, ``max_enqueued_batches`` 10, ``num_batch_threads``
    the number of CPUs.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 1
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    thread_pool_name: str = "model_server_batch_threads"

    def __post_init__(self) -> None:
        if self.num_batch_threads < 1:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                f"num_batch_threads must be positive; was {self.num_batch_threads}",
            )
        if self.max_batch_size < 1 or self.max_enqueued_batches < 1:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                "max_batch_size and max_enqueued_batches must be positive; were "
                f"{self.max_batch_size} and {self.max_enqueued_batches}",
            )
        # bundle_factory_util.cc WrapSessionForBatching.
        if self.allowed_batch_sizes and self.allowed_batch_sizes[-1] != self.max_batch_size:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                "Last entry in allowed_batch_sizes must match max_batch_size; last "
                f"entry was {self.allowed_batch_sizes[-1]}; expected {self.max_batch_size}",
            )

    def padded_size(self, size: int) -> int:
        """The smallest allowed batch size >= ``size`` (``size`` itself when none is set)."""
        return next((s for s in self.allowed_batch_sizes if s >= size), size)


def read_batching_parameters(path: str | None, *, num_cpus: int = 1) -> BatchingParameters:
    """``--batching_parameters_file`` (None: the defaults TF Serving uses without one)."""
    if not path:
        return BatchingParameters(num_batch_threads=num_cpus)
    message = _read(path, "BatchingParameters")

    def value(name: str, default: Any) -> Any:
        return getattr(message, name).value if message.HasField(name) else default

    return BatchingParameters(
        max_batch_size=value("max_batch_size", 1000),
        batch_timeout_micros=value("batch_timeout_micros", 0),
        max_enqueued_batches=value("max_enqueued_batches", 10),
        num_batch_threads=value("num_batch_threads", num_cpus),
        allowed_batch_sizes=tuple(message.allowed_batch_sizes),
        pad_variable_length_inputs=message.pad_variable_length_inputs,
        thread_pool_name=value("thread_pool_name", "batch_threads"),
    )


def read_prometheus_path(path: str | None) -> str | None:
    """The Prometheus path ``--monitoring_config_file`` enables, or None."""
    if not path:
        return None
    config = _read(path, "MonitoringConfig").prometheus_config
    if not config.enable:
        return None
    return str(config.path) or DEFAULT_PROMETHEUS_PATH


@dataclass(frozen=True)
class SslConfig:
    """``SSLConfig``: PEM key and certificate, optional client CA and client verification."""

    server_key: str
    server_cert: str
    custom_ca: str
    client_verify: bool


def read_ssl_config(path: str) -> SslConfig:
    """``--ssl_config_file``."""
    message = _read(path, "SSLConfig")
    return SslConfig(
        message.server_key, message.server_cert, message.custom_ca, message.client_verify
    )
