"""tensorflow_model_server's command line: TF's parsing rules and `tfs-async serve` on it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import get_model_status_pb2
from tfs_async.testing import flags
from tfs_async.testing.cli import READY_PREFIX

TIMEOUT = 30.0  # child start-up imports grpc, aiohttp and numpy on a busy machine

# Every flag tensorflow_model_server defines (model_servers/main.cc at the SPEC's commit).
TF_SERVING_FLAG_NAMES = [
    "port",
    "grpc_socket_path",
    "rest_api_port",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support",
    "enable_batching",
    "allow_version_labels_for_unavailable_models",
    "batching_parameters_file",
    "enable_per_model_batching_parameters",
    "model_config_file",
    "model_config_file_poll_wait_seconds",
    "model_name",
    "model_base_path",
    "num_load_threads",
    "num_unload_threads",
    "max_num_load_retries",
    "load_retry_interval_micros",
    "file_system_poll_wait_seconds",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "use_alts_credentials",
    "ssl_config_file",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "enable_model_warmup",
    "num_request_iterations_for_warmup",
    "version",
    "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
]

_VALUE = {"int32": "7", "int64": "7", "float": "0.5", "bool": "true", "string": "x"}
_PARSED = {"int32": 7, "int64": 7, "float": 0.5, "bool": True, "string": "x"}


def test_all_48_flags_of_tensorflow_model_server_are_known_in_order() -> None:
    assert len(TF_SERVING_FLAG_NAMES) == 48
    assert [flag.name for flag in flags.TF_SERVING_FLAGS] == TF_SERVING_FLAG_NAMES


@pytest.mark.parametrize("flag", flags.TF_SERVING_FLAGS, ids=lambda flag: flag.name)
def test_every_flag_parses_its_type(flag: flags.Flag) -> None:
    parsed = flags.parse([f"--{flag.name}={_VALUE[flag.type]}"])
    assert (parsed.unknown, parsed.errors) == ([], [])
    assert parsed.values[flag.name] == _PARSED[flag.type]
    assert parsed.given == [flag.name]


def test_tf_syntax_rules() -> None:
    parsed = flags.parse(["--port", "9000", "--enable_batching", "--rest_api_port=1", "--port=2"])
    assert parsed.unknown == ["--port", "9000"]  # "--flag value" is not TF syntax
    assert (parsed.values["port"], parsed.values["rest_api_port"]) == (2, 1)
    assert parsed.values["enable_batching"] is True
    assert flags.parse(["--enable_batching=false"]).values["enable_batching"] is False
    assert flags.parse(["--", "--port=3"]).unknown == ["--", "--port=3"]
    assert flags.parse(["--port=3"]).values["rest_api_port"] == 8501  # the emulator's default
    assert flags.parse(["--help"]).help
    assert not flags.parse(["--bogus", "--help"]).help  # only a first --help counts
    models = flags.parse(["--python_models=a:b", "--python_models=c:d"]).values["python_models"]
    assert models == ["a:b", "c:d"]


@pytest.mark.parametrize(
    "arg",
    [
        "--enable_batching=True",
        "--enable_batching=1",
        "--enable_batchingx",
        "--port=80x",
        "--port=",
        "--port=2147483648",
        "--load_retry_interval_micros=1.5",
        "--per_process_gpu_memory_fraction=half",
    ],
)
def test_malformed_values_are_errors(arg: str) -> None:
    parsed = flags.parse([arg])
    assert len(parsed.errors) == 1
    assert parsed.errors[0].startswith("Couldn't interpret value ")


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_int32_values_round_trip(value: int) -> None:
    assert flags.parse([f"--port={value}"]).values["port"] == value


@given(st.text(alphabet="0123456789-+. exa", max_size=8))
def test_int32_accepts_exactly_what_scanf_d_accepts(text: str) -> None:
    stripped = text.lstrip(" ")
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    whole_int = body.isdigit() and -(2**31) <= int(stripped) <= 2**31 - 1
    assert (flags.parse([f"--port={text}"]).errors == []) is whole_int


def test_usage_lists_every_flag_with_its_default() -> None:
    text = flags.usage("tfs-async serve")
    assert text.startswith("usage: tfs-async serve\nFlags:\n")
    assert '--model_name="default"' in text
    assert "--enable_model_warmup=true" in text
    assert "(no effect in the emulator)" in text


# -- tfs-async serve in a subprocess --------------------------------------------------------


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tfs_async.testing",
        "--port=0",
        "--rest_api_port=0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _stdout_until_ready(proc: asyncio.subprocess.Process) -> tuple[list[str], dict[str, Any]]:
    """Lines before the ready line, and the ready line's JSON (bounded by TIMEOUT)."""
    assert proc.stdout is not None
    before: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, f"no ready line; stdout so far: {before}"
            if line.startswith(READY_PREFIX):
                return before, json.loads(line[len(READY_PREFIX) :])
            before.append(line)


async def _stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(TIMEOUT):
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_unknown_argument_is_reported_and_the_server_starts(models_dir: Path) -> None:
    proc = await _spawn(
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        "--rest_api_num_threads",
        "4",
        "--enable_model_warmup=false",
        "--grpc_max_threads=8",
    )
    try:
        before, ready = await _stdout_until_ready(proc)
    finally:
        code, err = await _stop(proc)
    assert before[0] == "unknown argument: --rest_api_num_threads\n"
    assert before[1].startswith("usage: ")
    assert isinstance(ready["grpc_port"], int)
    assert code == 0
    warnings = [line for line in err.splitlines() if "has no effect in the emulator" in line]
    assert warnings == [
        "--enable_model_warmup=false has no effect in the emulator (warmup request replay)",
        "--grpc_max_threads=8 has no effect in the emulator (gRPC server threads)",
    ]


@pytest.mark.parametrize("arg", ["--port=80x", "--enable_batching=yes", "--help"])
async def test_malformed_value_or_help_prints_usage_and_exits_255(arg: str) -> None:
    proc = await _spawn("--model_name=m", arg)
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 255
    assert out.decode().startswith("usage: ")
    assert READY_PREFIX.encode() not in out
    if arg != "--help":
        assert err.decode().startswith("Couldn't interpret value =")


async def test_batching_parameters_file_needs_enable_batching(
    models_dir: Path, tmp_path: Path
) -> None:
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 4 }\n")
    proc = await _spawn(
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        f"--batching_parameters_file={params}",
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 1
    assert READY_PREFIX.encode() not in out
    assert (
        "Failed to start server. Error: INVALID_ARGUMENT: server_options.batching_parameters_file "
        "is set without setting server_options.enable_batching to true."
    ) in err.decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: x }", "Invalid protobuf file: '{path}'"),
        ("max_batch_size { value: 4 } allowed_batch_sizes: 2", "must match max_batch_size"),
    ],
)
async def test_bad_batching_parameters_stop_the_start(
    models_dir: Path, tmp_path: Path, text: str, message: str
) -> None:
    params = tmp_path / "batching.txt"
    params.write_text(text)
    proc = await _spawn(
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        "--enable_batching",
        f"--batching_parameters_file={params}",
    )
    async with asyncio.timeout(TIMEOUT):
        _, err = await proc.communicate()
    assert proc.returncode == 1
    assert message.format(path=params) in err.decode()


async def test_no_model_at_all_is_tf_servings_start_error() -> None:
    proc = await _spawn()
    async with asyncio.timeout(TIMEOUT):
        _, err = await proc.communicate()
    assert proc.returncode == 1
    assert "Both server_options.model_base_path and server_options.model_config_file" in (
        err.decode()
    )


async def test_version_prints_and_exits() -> None:
    proc = await _spawn("--version")
    async with asyncio.timeout(TIMEOUT):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert out.decode().startswith("TensorFlow ModelServer: tfs-async-emulator-")


async def test_ssl_config_file_serves_grpc_over_tls(models_dir: Path, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(
        f"server_key: {json.dumps(cert.private_key_pem.bytes().decode())}\n"
        f"server_cert: {json.dumps(cert.cert_chain_pems[0].bytes().decode())}\n"
    )
    proc = await _spawn(
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        f"--ssl_config_file={ssl_config}",
        "--rest_api_port=-1",
    )
    try:
        _, ready = await _stdout_until_ready(proc)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "default"
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        target = f"127.0.0.1:{ready['grpc_port']}"
        async with grpc.aio.secure_channel(target, credentials) as channel:
            status = channel.unary_unary(
                _methods.GET_MODEL_STATUS,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=get_model_status_pb2.GetModelStatusResponse.FromString,
            )
            response = await status(request, timeout=TIMEOUT)
        assert [s.version for s in response.model_version_status] == [123]
    finally:
        code, _ = await _stop(proc)
    assert code == 0


async def test_grpc_socket_path_adds_a_unix_socket_listener(
    models_dir: Path, tmp_path: Path
) -> None:
    socket_path = tmp_path / "tf-serving.sock"
    proc = await _spawn(
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        f"--grpc_socket_path={socket_path}",
        "--rest_api_port=-1",
    )
    try:
        await _stdout_until_ready(proc)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "default"
        async with grpc.aio.insecure_channel(f"unix:{socket_path}") as channel:
            status = channel.unary_unary(
                _methods.GET_MODEL_STATUS,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=get_model_status_pb2.GetModelStatusResponse.FromString,
            )
            response = await status(request, timeout=TIMEOUT)
        assert [s.version for s in response.model_version_status] == [123]
    finally:
        code, err = await _stop(proc)
    assert code == 0
    assert "has no effect" not in err


async def test_unparsable_model_config_logs_protobufs_error_and_stops(tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text("improperly formatted file")
    proc = await _spawn(f"--model_config_file={config}")
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 1
    assert READY_PREFIX.encode() not in out
    lines = err.decode().splitlines()
    assert lines[0] == (
        "Error parsing text-format tensorflow.serving.ModelServerConfig: 1:1: Message type "
        '"tensorflow.serving.ModelServerConfig" has no field named "improperly".'
    )
    assert lines[1] == (
        "tfs-async serve: Failed to start server. Error: INVALID_ARGUMENT: "
        f"Invalid protobuf file: '{config}'"
    )


async def test_batching_monitoring_and_device_flags_reach_the_server(
    models_dir: Path, tmp_path: Path
) -> None:
    batching = tmp_path / "batching.txt"
    batching.write_text("max_batch_size { value: 4 } num_batch_threads { value: 1 }")
    monitoring = tmp_path / "monitoring.txt"
    monitoring.write_text("prometheus_config { enable: true }")
    proc = await _spawn(
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
        f"--monitoring_config_file={monitoring}",
        "--emulate_device_latency=0,0",
    )
    try:
        _, ready = await _stdout_until_ready(proc)
        rest = f"http://127.0.0.1:{ready['rest_port']}"
        async with aiohttp.ClientSession() as http, asyncio.timeout(TIMEOUT):
            body = json.dumps({"instances": [1.0, 2.0, 3.0, 4.0, 5.0]}).encode()
            async with http.post(f"{rest}/v1/models/default:predict", data=body) as resp:
                too_big = (resp.status, await resp.json())
            body = json.dumps({"instances": [1.0, 2.0]}).encode()
            async with http.post(f"{rest}/v1/models/default:predict", data=body) as resp:
                fits = (resp.status, await resp.json())
            async with http.get(f"{rest}/monitoring/prometheus/metrics") as resp:
                page = (await resp.read()).decode()
    finally:
        code, _ = await _stop(proc)
    assert code == 0
    assert too_big == (400, {"error": "Task size 5 is larger than maximum input batch size 4"})
    assert fits == (200, {"predictions": [2.5, 3.0]})
    assert ":tensorflow:serving:batching_session:wrapped_run_count{} 1" in page.splitlines()


async def test_bad_device_latency_stops_the_start(models_dir: Path) -> None:
    proc = await _spawn(
        f"--model_base_path={models_dir / 'saved_model_half_plus_two_cpu'}",
        "--emulate_device_latency=fast",
    )
    async with asyncio.timeout(TIMEOUT):
        _, err = await proc.communicate()
    assert proc.returncode == 1
    assert "--emulate_device_latency expects FIXED_MS,PER_ROW_MS" in err.decode()
