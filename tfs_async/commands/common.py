"""What every client subcommand shares: the client's flags, the target, errors, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from tfs_async.errors import TFServingError
from tfs_async.transport.base import CallOptions, Transport

if TYPE_CHECKING:
    from tfs_async._proto.model_server_config_pb2 import ModelServerConfig
    from tfs_async.client import Client
    from tfs_async.types import (
        ClassifyRequest,
        ClassifyResult,
        ModelMetadata,
        ModelSpec,
        ModelVersionStatus,
        MultiInferenceRequest,
        MultiInferenceResult,
        PredictRequest,
        PredictResult,
        RegressRequest,
        RegressResult,
    )

__all__ = [
    "EXIT_CALL_FAILED",
    "EXIT_NOT_READY",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "LoggedTransport",
    "TARGET_ENV",
    "UsageError",
    "add_client_options",
    "add_model_arguments",
    "open_client",
    "run_command",
]

#: exit statuses of the client subcommands
EXIT_OK = 0
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_READY = 3
EXIT_PARTIAL = 4

#: environment variable read when no target is given on the command line
TARGET_ENV = "TFS_ASYNC_TARGET"

_log = logging.getLogger("tfs_async.cli")
T = TypeVar("T")


class UsageError(Exception):
    """A command line the subcommand cannot act on (exit status 2)."""


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """The client's options, shared by every client subcommand."""
    group = parser.add_argument_group("client options")
    group.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        help="seconds per call, retries included (default 60; 0: no deadline)",
    )
    group.add_argument(
        "--retries",
        type=_count,
        default=2,
        help="retries after a failed attempt (UNAVAILABLE, overload; default 2)",
    )
    group.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="K=V",
        help="call metadata (gRPC) / HTTP header, e.g. authorization='Bearer ...' (repeatable)",
    )
    group.add_argument("--ca", metavar="PEM", help="CA certificates (default: the system's)")
    group.add_argument("--cert", metavar="PEM", help="client certificate chain (mutual TLS)")
    group.add_argument("--key", metavar="PEM", help="client private key (mutual TLS)")
    group.add_argument(
        "--server-name", metavar="NAME", help="name checked against the server's certificate"
    )
    group.add_argument(
        "--compress", action="store_true", help="gzip requests (HTTP) / gzip compression (gRPC)"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every attempt (method, target, model, outcome) and show tracebacks",
    )


def add_model_arguments(parser: argparse.ArgumentParser, *, signature: bool = False) -> None:
    """``[TARGET] MODEL`` and the model spec flags."""
    parser.add_argument(
        "target",
        metavar="[TARGET]",
        help=f"grpc://host:8500, http://host:8501, grpcs://, https://, dns:///... "
        f"(omit it to read ${TARGET_ENV})",
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", help="the model's name")
    parser.usage = "%(prog)s [options] [TARGET] MODEL"
    spec = parser.add_mutually_exclusive_group()
    spec.add_argument("--version", type=int, help="a version of the model")
    spec.add_argument("--label", help="a version label of the model")
    if signature:
        parser.add_argument("--signature", "--signature_def", help="default: serving_default")


def resolve_target(args: argparse.Namespace, what: str = "model") -> tuple[str, str]:
    """(target, second positional): ``TARGET X`` or ``X`` with the target from the environment."""
    first: str = args.target
    second: str | None = getattr(args, what)
    if second is not None:
        return first, second
    target = os.environ.get(TARGET_ENV, "").strip()
    if not target:
        raise UsageError(f"no target given: pass TARGET {what.upper()} or set ${TARGET_ENV}")
    return target, first


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value or None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _headers(items: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--header expects KEY=VALUE, got {item.partition('=')[0]!r}")
        pairs.append((key.strip(), value))
    return pairs


def open_client(args: argparse.Namespace, target: str, **overrides: Any) -> Client:
    """A :class:`Client` for ``target`` with the command line's options.

    With ``--verbose`` the transport is wrapped so that every attempt is logged.
    """
    from tfs_async.client import Client
    from tfs_async.options import TLSConfig
    from tfs_async.transport.target import transport_for

    tls = None
    if args.ca or args.cert or args.key or args.server_name:
        for path in (args.ca, args.cert, args.key):
            if path is not None and not os.path.isfile(path):
                raise UsageError(f"TLS file not found: {path}")
        try:
            tls = TLSConfig(
                ca_cert=args.ca,
                client_cert=args.cert,
                client_key=args.key,
                server_name=args.server_name,
            )
        except ValueError as error:
            raise UsageError(f"{error} (--cert and --key go together)") from None
    try:
        transport: Transport = transport_for(target, tls=tls)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.verbose:
        transport = LoggedTransport(transport, target)
    options: dict[str, Any] = {
        "timeout": args.timeout,
        "max_retries": args.retries,
        "metadata": _headers(args.header),
        "compress": args.compress,
    }
    options.update(overrides)
    return Client(transport, **options)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_command(
    args: argparse.Namespace, command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
) -> int:
    """Run an async subcommand: its exit status, or a one-line error on stderr."""
    if args.verbose:
        logging.basicConfig(
            stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s"
        )
        _log.setLevel(logging.DEBUG)
    try:
        return asyncio.run(command(args))
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep the exit flush quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CALL_FAILED
    except KeyboardInterrupt:
        print("tfs-async: interrupted", file=sys.stderr)
        return 130
    except BaseException as error:
        if not isinstance(error, Exception):
            raise
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        code = EXIT_USAGE if isinstance(error, UsageError) else EXIT_CALL_FAILED
        if isinstance(error, (UsageError, TFServingError)):
            message = str(error)
        elif isinstance(error, (OSError, ValueError)):
            message = f"{type(error).__name__}: {error}"
            code = EXIT_USAGE if isinstance(error, (FileNotFoundError, ValueError)) else code
        else:
            message = f"{type(error).__name__}: {error}"
        print(f"tfs-async: error: {_one_line(message)}", file=sys.stderr, flush=True)
        return code


class LoggedTransport(Transport):
    """A transport that logs each attempt (``--verbose``): method, target, model, outcome.

    Payloads and header values never reach the log (they may hold credentials);
    header names do.
    """

    def __init__(self, inner: Transport, target: str) -> None:
        self._inner = inner
        self._target = target
        self.protocol = inner.protocol
        # The capabilities too: the client decides from them what it needs to send.
        self.server_types_inputs = inner.server_types_inputs
        self.sends_output_filter = inner.sends_output_filter

    async def _attempt(
        self, method: str, model: object, options: CallOptions, call: Awaitable[T]
    ) -> T:
        names = ",".join(k for k, _ in options.metadata) or "-"
        deadline = "none" if options.timeout is None else f"{options.timeout:.3f} s"
        _log.debug(
            "%s %s %s model %s deadline %s headers %s",
            self.protocol,
            method,
            self._target,
            model,
            deadline,
            names,
        )
        started = time.monotonic()
        try:
            result = await call
        except TFServingError as error:
            http = f" HTTP {error.http_status}" if error.http_status is not None else ""
            elapsed = (time.monotonic() - started) * 1e3
            _log.debug(
                "%s %s -> %s%s in %.1f ms", self.protocol, method, error.code.name, http, elapsed
            )
            raise
        except BaseException as error:
            _log.debug("%s %s -> %s", self.protocol, method, type(error).__name__)
            raise
        elapsed = (time.monotonic() - started) * 1e3
        _log.debug("%s %s -> OK in %.1f ms", self.protocol, method, elapsed)
        return result

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        call = self._inner.predict(request, options)
        return await self._attempt("Predict", request.model, options, call)

    async def classify(self, request: ClassifyRequest, options: CallOptions) -> ClassifyResult:
        call = self._inner.classify(request, options)
        return await self._attempt("Classify", request.model, options, call)

    async def regress(self, request: RegressRequest, options: CallOptions) -> RegressResult:
        call = self._inner.regress(request, options)
        return await self._attempt("Regress", request.model, options, call)

    async def multi_inference(
        self, request: MultiInferenceRequest, options: CallOptions
    ) -> MultiInferenceResult:
        model = request.tasks[0].model if request.tasks else None
        call = self._inner.multi_inference(request, options)
        return await self._attempt("MultiInference", model, options, call)

    async def get_model_metadata(self, model: ModelSpec, options: CallOptions) -> ModelMetadata:
        call = self._inner.get_model_metadata(model, options)
        return await self._attempt("GetModelMetadata", model, options, call)

    async def get_model_status(
        self, model: ModelSpec, options: CallOptions
    ) -> list[ModelVersionStatus]:
        call = self._inner.get_model_status(model, options)
        return await self._attempt("GetModelStatus", model, options, call)

    async def reload_config(self, config: ModelServerConfig, options: CallOptions) -> None:
        call = self._inner.reload_config(config, options)
        await self._attempt("HandleReloadConfigRequest", None, options, call)

    async def connect(self, timeout: float | None = None) -> None:
        """Open the inner transport's connections now, where it can."""
        connect = getattr(self._inner, "connect", None)
        if connect is not None:
            await connect(timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()
