"""``tfs-async serve``: run the emulator with tensorflow_model_server's command line.

Every flag of ``tensorflow_model_server`` is accepted, with its syntax
(:mod:`tfs_async.testing.flags`): ``--flag=value``, booleans as ``--flag``,
``--flag=true`` or ``--flag=false``. Flags that change what a client sees are
emulated; the others are accepted with one warning line each saying they have no
effect here. As TF Serving does, an unknown argument is reported
(``unknown argument: X`` and the usage, on stdout) and the server starts anyway;
a malformed value of a known flag, or ``--help``, prints the usage and exits
with status 255; ``--batching_parameters_file`` without ``--enable_batching``
stops the start.

Differences from ``tensorflow_model_server``: both listeners bind ``--host``
(127.0.0.1 by default); port 0 picks a free port and a negative port disables
that listener; REST listens on 8501 by default (like TF Serving's Docker image);
``--file_system_poll_wait_seconds`` (default 1) re-scans model directories. Once serving, one
machine-readable line goes to stdout::

    TFS_ASYNC_SERVING {"grpc_port": 8500, "rest_port": 8501, "host": "127.0.0.1", "pid": 42}

SIGTERM and SIGINT stop the server cleanly (exit status 0). A start that fails
prints ``tfs-async serve: ...`` with the reason on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tfs_async.errors import StatusCode
from tfs_async.testing import flags as tf_flags
from tfs_async.testing.faults import FaultPlan, fault_from_dict
from tfs_async.testing.status import ServingStatus

__all__ = ["READY_PREFIX", "add_arguments", "load_python_models", "main", "run"]

#: The stdout line prefix announcing the bound ports (followed by a JSON object).
READY_PREFIX = "TFS_ASYNC_SERVING "

#: TF Serving's exit status for a bad command line (``main`` returns -1).
USAGE_EXIT = 255

_log = logging.getLogger("tfs_async.testing")


def _package_version() -> str:
    """The installed tfs-async's version (the emulator never imports the client package)."""
    try:
        return version("tfs-async")
    except PackageNotFoundError:
        return "unknown"


class _TensorflowModelServerFlags(argparse.Action):
    """Parses the captured command line with TF's rules; sets one attribute per flag."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        parsed = tf_flags.parse([str(value) for value in values or ()])
        for name, value in parsed.values.items():
            setattr(namespace, name, value)
        namespace.tf_flags = parsed
        namespace.prog = parser.prog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` take tensorflow_model_server's command line as TF Serving parses it.

    argparse's own option syntax is switched off for this parser: every argument
    goes to :func:`tfs_async.testing.flags.parse`, whose results become attributes
    named after the flags (``args.port``, ``args.enable_batching``...) plus
    ``args.tf_flags`` (the whole :class:`~tfs_async.testing.flags.ParsedFlags`).
    """
    parser.prefix_chars = "\x00"
    parser.add_argument(
        "flags",
        nargs=argparse.REMAINDER,
        action=_TensorflowModelServerFlags,
        help="tensorflow_model_server flags (--help lists them)",
    )


def load_python_models(spec: str) -> list[Any]:
    """Import ``package.module:function`` and return the model sources it gives.

    The attribute may be a callable (called with no argument) or the sources
    themselves; either way the result is one ModelSource or an iterable of them.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--python_models expects 'package.module:function', got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    produced = target() if callable(target) else target
    from tfs_async.testing.models import ModelSource

    if isinstance(produced, ModelSource):
        return [produced]
    sources = list(produced) if isinstance(produced, Iterable) else [produced]
    for source in sources:
        if not isinstance(source, ModelSource):
            raise TypeError(f"{spec} produced {type(source).__name__}, expected a ModelSource")
    return sources


def _channel_arguments(text: str) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--grpc_channel_arguments item {item!r} is not key=value")
        try:
            options.append((key, int(value)))
        except ValueError:
            options.append((key, value))
    return options


def _single_model_config(name: str, base_path: str) -> str:
    return (
        "model_config_list { config { "
        f"name: {json.dumps(name)} base_path: {json.dumps(os.path.abspath(base_path))} "
        'model_platform: "tensorflow" } }'
    )


def _fault_plan(text: str | None, seed: int) -> FaultPlan | None:
    if not text:
        return None
    specs = json.loads(text)
    if isinstance(specs, dict):
        specs = [specs]
    return FaultPlan([fault_from_dict(spec) for spec in specs], seed=seed)


def _port(value: int) -> int | None:
    return None if value < 0 else value


def _server_options(args: argparse.Namespace) -> dict[str, Any]:
    """ModelServer keyword arguments from the flags; ServingStatus/ValueError when TF refuses."""
    from tfs_async.testing.device_model import DeviceModel
    from tfs_async.testing.server_config import (
        read_batching_parameters,
        read_prometheus_path,
        read_ssl_config,
    )

    if args.use_alts_credentials and args.ssl_config_file:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT,
            "Either use_alts_credentials must be false or ssl_config_file must be empty.",
        )
    if not args.model_base_path and not args.model_config_file and not args.python_models:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT,
            "Both server_options.model_base_path and server_options.model_config_file are empty!",
        )
    if args.model_config_file:
        _check_model_config_file(args.model_config_file)
    options: dict[str, Any] = {}
    if args.enable_batching:
        options["batching"] = read_batching_parameters(
            args.batching_parameters_file or None, num_cpus=os.cpu_count() or 1
        )
    elif args.batching_parameters_file:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT,
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        )
    if args.emulate_device_latency:
        options["device"] = DeviceModel.parse(args.emulate_device_latency)
    if args.ssl_config_file:
        import grpc

        ssl = read_ssl_config(args.ssl_config_file)
        options["grpc_credentials"] = grpc.ssl_server_credentials(
            [(ssl.server_key.encode(), ssl.server_cert.encode())],
            root_certificates=ssl.custom_ca.encode() or None,
            require_client_auth=ssl.client_verify,
        )
    # TF: 0 polls once, < 0 never polls again; both mean "at start only" here.
    options["file_system_poll_wait_seconds"] = max(0, args.file_system_poll_wait_seconds)
    options["enable_signature_method_name_check"] = args.enable_signature_method_name_check
    options["prefer_tflite_model"] = args.prefer_tflite_model
    if args.grpc_socket_path:
        options["grpc_socket_path"] = args.grpc_socket_path
    if args.rest_api_port >= 0:
        options["prometheus_path"] = read_prometheus_path(args.monitoring_config_file or None)
    return options


def _check_model_config_file(path: str) -> None:
    """TF Serving's refusal of a models.config that does not parse, with protobuf's log line."""
    from google.protobuf import text_format

    from tfs_async._proto.model_server_config_pb2 import ModelServerConfig
    from tfs_async.testing.server_config import log_text_format_error

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return  # the server's own start reports a missing file
    try:
        text_format.Parse(text, ModelServerConfig())
    except text_format.ParseError as exc:
        log_text_format_error("tensorflow.serving.ModelServerConfig", exc)
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT, f"Invalid protobuf file: '{path}'"
        ) from None


async def serve(args: argparse.Namespace) -> int:
    """Run the server described by parsed ``args`` until SIGTERM/SIGINT."""
    from tfs_async.testing.server import ModelServer

    models: list[Any] = []
    for spec in args.python_models:
        models.extend(load_python_models(spec))
    options = _server_options(args)
    config: str | None = None
    if not args.model_config_file and args.model_base_path:
        config = _single_model_config(args.model_name, args.model_base_path)
    server = ModelServer(
        models,
        model_config_file=args.model_config_file or None,
        config=config,
        grpc_port=_port(args.port),
        rest_port=_port(args.rest_api_port),
        host=args.host,
        enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
        rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
        rest_api_enable_cors_support=args.rest_api_enable_cors_support,
        model_config_file_poll_wait_seconds=max(0, args.model_config_file_poll_wait_seconds),
        faults=_fault_plan(args.faults, args.fault_seed),
        grpc_options=_channel_arguments(args.grpc_channel_arguments),
        enable_grpc_healthcheck_service=args.enable_grpc_healthcheck_service,
        enable_profiler=args.enable_profiler,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
        **options,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        try:
            if server.grpc_port is not None:
                _log.warning("Running gRPC ModelServer at %s ...", server.grpc_target)
            if server.rest_port is not None:
                _log.warning("Exporting HTTP/REST API at:%s ...", server.rest_url)
            ready = {
                "grpc_port": server.grpc_port,
                "rest_port": server.rest_port,
                "host": args.host,
                "pid": os.getpid(),
            }
            print(READY_PREFIX + json.dumps(ready), flush=True)
            await stop.wait()
        finally:
            await server.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


def _command_line_verdict(args: argparse.Namespace) -> int | None:
    """What TF Serving's main() does with the parsed command line: an exit status, or None."""
    parsed: tf_flags.ParsedFlags = args.tf_flags
    program = getattr(args, "prog", "tfs-async serve")
    if parsed.errors or parsed.help:
        for error in parsed.errors:
            print(error, file=sys.stderr, flush=True)
        print(tf_flags.usage(program), end="", flush=True)
        return USAGE_EXIT
    if args.version:
        print(f"TensorFlow ModelServer: tfs-async-emulator-{_package_version()}")
        print("TensorFlow Library: none (tfs-async emulator)", flush=True)
        return 0
    if parsed.unknown:
        print(f"unknown argument: {parsed.unknown[0]}", flush=True)
        print(tf_flags.usage(program), end="", flush=True)
    for flag in parsed.ignored():
        _log.warning(tf_flags.ignored_flag_warning(flag, args.tf_flags.values[flag.name]))
    return None


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tfs-async serve``: the exit status."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    verdict = _command_line_verdict(args)
    if verdict is not None:
        return verdict
    try:
        return asyncio.run(serve(args))
    except ServingStatus as status:
        # TF Serving's BuildAndStart refusals keep TF's wording.
        print(
            f"tfs-async serve: Failed to start server. Error: {status.code.name}: {status.message}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    except Exception as exc:
        # Start-up failures (bad flags, config, ports) end the process with a one-line reason.
        print(f"tfs-async serve: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfs_async.testing``: the same as ``tfs-async serve``."""
    parser = argparse.ArgumentParser(
        prog="python -m tfs_async.testing", description="Run the TF Serving emulator."
    )
    add_arguments(parser)
    with contextlib.suppress(BrokenPipeError):
        return run(parser.parse_args(argv))
    return 1
