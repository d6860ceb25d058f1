"""tensorflow_model_server's command line, parsed the way TF Serving parses it.

TF Serving declares 48 flags (``model_servers/main.cc``) and parses them with
TensorFlow's ``tensorflow::Flags::Parse`` (``core/util/command_line_flags.cc``):

* a valued flag is only ``--name=value`` (``--name value`` is two unknown arguments);
* a boolean is ``--name``, ``--name=true`` or ``--name=false``, nothing else;
* integers and floats must be the whole value (``--port=80x`` is malformed);
* a repeated flag keeps its last value; everything from ``--`` on is unknown;
* a malformed value of a known flag, or ``--help``, stops the server after
  printing the usage; an unknown argument is reported (``unknown argument: X``)
  and the server starts anyway.

:func:`parse` returns all of that as data; ``tfs-async serve`` acts on it.

>>> parsed = parse(["--port=9000", "--enable_batching", "--port", "8000"])
>>> parsed.values["port"], parsed.values["enable_batching"], parsed.unknown
(9000, True, ['--port', '8000'])
>>> parse(["--port=80x"]).errors
["Couldn't interpret value =80x for flag port."]
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "EMULATOR_FLAGS",
    "TF_SERVING_FLAGS",
    "Flag",
    "ParsedFlags",
    "ignored_flag_warning",
    "parse",
    "usage",
]

FlagType = Literal["int32", "int64", "float", "bool", "string"]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
# sscanf("%d%c") == 1: optional leading white space, a sign, digits, nothing after.
_INT = re.compile(r"\s*[+-]?\d+")
# sscanf("%f%c") == 1: a decimal or hex float, inf or nan, nothing after.
_FLOAT = re.compile(
    r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
    r"|inf(?:inity)?|nan)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Flag:
    """One flag: its name, type, default, and what the emulator does with it.

    ``effect`` is ``"emulated"`` (a client can see it, and the emulator does it),
    ``"ignored"`` (accepted with a warning: nothing a client sees depends on it
    here) or ``"emulator"`` (the emulator's own flag, not TF Serving's).
    """

    name: str
    type: FlagType
    default: Any
    help: str
    effect: Literal["emulated", "ignored", "emulator"] = "emulated"
    repeatable: bool = False


def _cpus() -> int:
    return os.cpu_count() or 1


def _tf(
    name: str, type_: FlagType, default: Any, help_: str, *, ignored: str | None = None
) -> Flag:
    return Flag(name, type_, default, ignored or help_, "ignored" if ignored else "emulated")


#: TF Serving's flags in ``main.cc``'s order, with ``server.h``'s defaults. The
#: emulator's own defaults differ for two of them (see ``tfs-async serve``'s help):
#: ``--rest_api_port`` is 8501 and ``--port=0`` picks a free port.
TF_SERVING_FLAGS: tuple[Flag, ...] = (
    _tf("port", "int32", 8500, "gRPC port (emulator: 0 picks a free port, <0 disables gRPC)"),
    _tf("grpc_socket_path", "string", "", "also serve gRPC on this UNIX socket"),
    _tf("rest_api_port", "int32", 8501, "REST port (emulator: 0 picks a free port, <0: off)"),
    _tf("rest_api_num_threads", "int32", 4 * _cpus(), "", ignored="HTTP worker threads"),
    _tf("rest_api_timeout_in_ms", "int32", 30000, "timeout of REST predict/classify/regress"),
    _tf(
        "rest_api_enable_cors_support",
        "bool",
        False,
        "CORS headers (Access-Control-Allow-*) on every REST API answer",
    ),
    _tf("enable_batching", "bool", False, "queue and batch Predict calls (shared batch scheduler)"),
    _tf(
        "allow_version_labels_for_unavailable_models",
        "bool",
        False,
        "let config labels point at versions not yet AVAILABLE",
    ),
    _tf(
        "batching_parameters_file",
        "string",
        "",
        "BatchingParameters text (needs --enable_batching)",
    ),
    _tf(
        "enable_per_model_batching_parameters",
        "bool",
        False,
        "",
        ignored="batching_params.pbtxt inside each SavedModel directory",
    ),
    _tf("model_config_file", "string", "", "models.config in TF Serving's text format"),
    _tf(
        "model_config_file_poll_wait_seconds", "int32", 0, "re-read --model_config_file (0: never)"
    ),
    _tf("model_name", "string", "default", "name of the single model"),
    _tf("model_base_path", "string", "", "base path of the single model's versions"),
    _tf("num_load_threads", "int32", 0, "", ignored="servable load thread pool"),
    _tf("num_unload_threads", "int32", 0, "", ignored="servable unload thread pool"),
    _tf("max_num_load_retries", "int32", 5, "", ignored="load retries after a failure"),
    _tf(
        "load_retry_interval_micros",
        "int64",
        60_000_000,
        "",
        ignored="interval between load retries",
    ),
    _tf(
        "file_system_poll_wait_seconds",
        "int32",
        1,
        "re-scan model directories for new versions this often (<= 0: only at start)",
    ),
    _tf("flush_filesystem_caches", "bool", True, "", ignored="filesystem cache flushing"),
    _tf("tensorflow_session_parallelism", "int64", 0, "", ignored="TF session threads"),
    _tf(
        "tensorflow_session_config_file",
        "string",
        "",
        "",
        ignored="TF Session ConfigProto",
    ),
    _tf("tensorflow_intra_op_parallelism", "int64", 0, "", ignored="TF intra-op threads"),
    _tf("tensorflow_inter_op_parallelism", "int64", 0, "", ignored="TF inter-op threads"),
    _tf("use_alts_credentials", "bool", False, "", ignored="Google ALTS credentials"),
    _tf("ssl_config_file", "string", "", "SSLConfig text: serve gRPC over TLS"),
    _tf("platform_config_file", "string", "", "", ignored="PlatformConfigMap"),
    _tf(
        "per_process_gpu_memory_fraction",
        "float",
        0.0,
        "",
        ignored="GPU memory fraction",
    ),
    _tf("saved_model_tags", "string", "serve", "", ignored="MetaGraph tags to load"),
    _tf("grpc_channel_arguments", "string", "", "comma-separated key=value gRPC server arguments"),
    _tf("grpc_max_threads", "int32", 4 * _cpus(), "", ignored="gRPC server threads"),
    _tf("enable_model_warmup", "bool", True, "", ignored="warmup request replay"),
    _tf(
        "num_request_iterations_for_warmup",
        "int32",
        0,
        "",
        ignored="warmup request replay count",
    ),
    _tf("version", "bool", False, "print the version and exit"),
    _tf(
        "monitoring_config_file",
        "string",
        "",
        "MonitoringConfig text: Prometheus metrics on the REST port",
    ),
    _tf(
        "remove_unused_fields_from_bundle_metagraph",
        "bool",
        True,
        "",
        ignored="MetaGraphDef memory trimming",
    ),
    _tf(
        "prefer_tflite_model",
        "bool",
        False,
        "serve a version's model.tflite instead of its SavedModel (needs TensorFlow)",
    ),
    _tf("num_tflite_pools", "int32", _cpus(), "", ignored="TF Lite interpreter pools"),
    _tf(
        "num_tflite_interpreters_per_pool",
        "int32",
        1,
        "",
        ignored="TF Lite interpreters per pool",
    ),
    _tf(
        "enable_signature_method_name_check",
        "bool",
        False,
        "classify/regress/multi-inference check the signature's method_name",
    ),
    _tf("xla_cpu_compilation_enabled", "bool", False, "", ignored="XLA:CPU JIT"),
    _tf("xla_gpu_compilation_enabled", "bool", False, "", ignored="XLA:GPU JIT"),
    _tf(
        "enable_profiler",
        "bool",
        True,
        "serve the profiler service (tensorflow.ProfilerService) on the gRPC port",
    ),
    _tf(
        "thread_pool_factory_config_file",
        "string",
        "",
        "",
        ignored="ThreadPoolConfig",
    ),
    _tf("mixed_precision", "string", "", "", ignored="mixed precision mode"),
    _tf("skip_initialize_tpu", "bool", False, "", ignored="TPU initialisation"),
    _tf(
        "enable_grpc_healthcheck_service",
        "bool",
        False,
        "also serve grpc.health.v1.Health/Check",
    ),
    _tf(
        "enable_serialization_as_tensor_content",
        "bool",
        False,
        "gRPC Predict outputs in tensor_content instead of typed *_val fields",
    ),
)

#: The emulator's own flags (same syntax as TF Serving's).
EMULATOR_FLAGS: tuple[Flag, ...] = (
    Flag("host", "string", "127.0.0.1", "address both listeners bind", "emulator"),
    Flag(
        "faults",
        "string",
        "",
        'fault rules as JSON, e.g. [{"method": "predict", "latency": 0.01}]',
        "emulator",
    ),
    Flag("fault_seed", "int64", 0, "seed of the fault plan", "emulator"),
    Flag(
        "python_models",
        "string",
        (),
        "MODULE:FUNCTION returning Python model sources (repeatable)",
        "emulator",
        repeatable=True,
    ),
    Flag(
        "emulate_device_latency",
        "string",
        "",
        "FIXED_MS,PER_ROW_MS: a serial device costing FIXED_MS per batch plus PER_ROW_MS per row",
        "emulator",
    ),
)

_ALL: tuple[Flag, ...] = TF_SERVING_FLAGS + EMULATOR_FLAGS


@dataclass
class ParsedFlags:
    """The result of :func:`parse`.

    ``values`` holds every flag (defaults included); ``given`` names the flags on
    the command line; ``unknown`` lists the arguments TF Serving would report;
    ``errors`` the malformed values (each stops the server); ``help`` is True
    when the first unknown argument is ``--help`` (TF Serving prints the usage
    and exits).
    """

    values: dict[str, Any]
    given: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def help(self) -> bool:
        """True when ``--help`` is the first unknown argument."""
        return bool(self.unknown) and self.unknown[0] == "--help"

    def ignored(self) -> list[Flag]:
        """The given flags that have no effect in the emulator, in command-line order."""
        by_name = {flag.name: flag for flag in _ALL}
        return [by_name[name] for name in self.given if by_name[name].effect == "ignored"]


def _convert(flag: Flag, text: str) -> Any:
    """``text`` (what follows ``=``) as the flag's type; ValueError when malformed."""
    if flag.type == "string":
        return text
    if flag.type == "float":
        if not _FLOAT.fullmatch(text):
            raise ValueError(text)
        return float(text.strip())
    if not _INT.fullmatch(text):
        raise ValueError(text)
    value = int(text)
    low, high = _INT32 if flag.type == "int32" else _INT64
    if not low <= value <= high:
        raise ValueError(text)
    return value


def _match(flag: Flag, arg: str) -> tuple[bool, Any, str | None]:
    """(matched, value, error) for one argument against one flag, as TF's ParseXFlag."""
    prefix = "--" + flag.name
    if not arg.startswith(prefix):
        return False, None, None
    rest = arg[len(prefix) :]
    if flag.type == "bool":
        # A bool matches its name as a prefix: "--namex" is a malformed value, not unknown.
        if rest in ("", "=true"):
            return True, True, None
        if rest == "=false":
            return True, False, None
        return True, None, f"Couldn't interpret value {rest} for flag {flag.name}."
    if not rest.startswith("="):
        return False, None, None
    try:
        return True, _convert(flag, rest[1:]), None
    except ValueError:
        return True, None, f"Couldn't interpret value ={rest[1:]} for flag {flag.name}."


def parse(argv: Sequence[str]) -> ParsedFlags:
    """Parse ``argv`` (without the program name) the way ``tensorflow_model_server`` does."""
    values: dict[str, Any] = {
        flag.name: list(flag.default) if flag.repeatable else flag.default for flag in _ALL
    }
    result = ParsedFlags(values)
    args = list(argv)
    for index, arg in enumerate(args):
        if arg == "--":
            result.unknown.extend(args[index:])
            break
        for flag in _ALL:
            matched, value, error = _match(flag, arg)
            if not matched:
                continue
            if error is not None:
                result.errors.append(error)
            elif flag.repeatable:
                values[flag.name].append(value)
            else:
                values[flag.name] = value
            if flag.name not in result.given:
                result.given.append(flag.name)
            break
        else:
            result.unknown.append(arg)
    return result


def _display_default(flag: Flag) -> str:
    if flag.type == "bool":
        return "true" if flag.default else "false"
    if flag.type == "string":
        shown = "" if flag.repeatable else flag.default
        return f'"{shown}"'
    if flag.type == "float":
        return f"{flag.default:f}"
    return str(flag.default)


def usage(program: str) -> str:
    """The usage text, laid out as TF's ``Flags::Usage`` lays it out."""
    lines = [f"usage: {program}", "Flags:"]
    for flag in _ALL:
        shown = f"--{flag.name}={_display_default(flag)}"
        note = {"ignored": " (no effect in the emulator)", "emulator": " (emulator only)"}
        lines.append(f"\t{shown:<33}\t{flag.type}\t{flag.help}{note.get(flag.effect, '')}")
    return "\n".join(lines) + "\n"


def ignored_flag_warning(flag: Flag, value: Any) -> str:
    """The one warning line for a flag that changes nothing in the emulator."""
    shown = str(value).lower() if isinstance(value, bool) else value
    return f"--{flag.name}={shown} has no effect in the emulator ({flag.help})"
