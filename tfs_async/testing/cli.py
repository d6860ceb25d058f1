"""``tfs-async serve``: run the emulator from the command line with tensorflow_model_server's flags.

Differences from ``tensorflow_model_server``: both listeners bind ``--host``
(127.0.0.1 by default); port 0 picks a free port and a negative port disables
that listener; REST listens on 8501 by default (like TF Serving's Docker image).
Once serving, one machine-readable line goes to stdout::

    TFS_ASYNC_SERVING {"grpc_port": 8500, "rest_port": 8501, "host": "127.0.0.1", "pid": 42}

SIGTERM and SIGINT stop the server cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tfs_async.testing.faults import FaultPlan, fault_from_dict

__all__ = ["READY_PREFIX", "add_arguments", "load_python_models", "main", "run"]

#: The stdout line prefix announcing the bound ports (followed by a JSON object).
READY_PREFIX = "TFS_ASYNC_SERVING "

_log = logging.getLogger("tfs_async.testing")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``serve``'s flags (tensorflow_model_server's names) on ``parser``."""
    parser.add_argument(
        "--port", type=int, default=8500, help="gRPC port (0: any free port, <0: off)"
    )
    parser.add_argument(
        "--rest_api_port", type=int, default=8501, help="REST port (0: any free port, <0: off)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--model_config_file", help="models.config in TF Serving's text format")
    parser.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0,
        help="re-read --model_config_file this often (0: never)",
    )
    parser.add_argument("--model_name", default="default", help="name of the single model")
    parser.add_argument("--model_base_path", help="base path of the single model's SavedModels")
    parser.add_argument(
        "--rest_api_timeout_in_ms",
        type=int,
        default=30000,
        help="timeout of REST predict/classify/regress (<=0: none)",
    )
    parser.add_argument(
        "--enable_serialization_as_tensor_content",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="gRPC Predict outputs in tensor_content instead of typed *_val fields",
    )
    parser.add_argument(
        "--allow_version_labels_for_unavailable_models",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="let config labels point at versions not yet AVAILABLE",
    )
    parser.add_argument(
        "--enable_grpc_healthcheck_service",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="also serve grpc.health.v1.Health/Check",
    )
    parser.add_argument(
        "--grpc_channel_arguments",
        default="",
        help="comma-separated key=value gRPC server arguments (ints passed as ints)",
    )
    parser.add_argument(
        "--monitoring_config_file",
        help="MonitoringConfig text; its prometheus_config path serves request counters",
    )
    parser.add_argument(
        "--faults",
        help='fault rules as JSON, e.g. \'[{"method": "predict", "latency": 0.01}]\'',
    )
    parser.add_argument("--fault_seed", type=int, default=0, help="seed of the fault plan")
    parser.add_argument(
        "--python_models",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="importable factory returning Python model sources (repeatable)",
    )


def _flag_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


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


def _prometheus_path(config_file: str | None) -> str | None:
    if config_file is None:
        return None
    text = Path(config_file).read_text()
    # MonitoringConfig text: prometheus_config { enable: true path: "/..." }
    block = re.search(r"prometheus_config\s*\{([^}]*)\}", text)
    if block is None or not re.search(r"enable\s*:\s*true", block.group(1)):
        return None
    path = re.search(r"path\s*:\s*[\"']([^\"']*)[\"']", block.group(1))
    return path.group(1) if path else "/monitoring/prometheus/metrics"


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


async def serve(args: argparse.Namespace) -> int:
    """Run the server described by parsed ``args`` until SIGTERM/SIGINT."""
    from tfs_async.testing.server import ModelServer

    models: list[Any] = []
    for spec in args.python_models:
        models.extend(load_python_models(spec))
    config: str | None = None
    if args.model_config_file is None and args.model_base_path is not None:
        config = _single_model_config(args.model_name, args.model_base_path)
    server = ModelServer(
        models,
        model_config_file=args.model_config_file,
        config=config,
        grpc_port=_port(args.port),
        rest_port=_port(args.rest_api_port),
        host=args.host,
        enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
        rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        prometheus_path=_prometheus_path(args.monitoring_config_file),
        faults=_fault_plan(args.faults, args.fault_seed),
        grpc_options=_channel_arguments(args.grpc_channel_arguments),
        enable_grpc_healthcheck_service=args.enable_grpc_healthcheck_service,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
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


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tfs-async serve``: the exit status."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    try:
        return asyncio.run(serve(args))
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
