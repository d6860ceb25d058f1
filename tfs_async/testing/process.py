"""``ModelServerProcess``: the emulator in a child process, so it does not share the caller's CPU.

The child runs ``python -m tfs_async.testing`` with tensorflow_model_server's
flags and announces its bound ports on stdout (:data:`~tfs_async.testing.cli.READY_PREFIX`).
Python models cannot cross the process boundary as objects: name an importable
factory instead (``python_models=["package.module:function"]``), or serve
SavedModels from a ``models.config`` / ``model_base_path``.

    with ModelServerProcess(python_models=["mybench.models:build"]) as server:
        ...  # server.grpc_target, server.rest_url

    async with ModelServerProcess(model_base_path="/models/half_plus_two") as server:
        ...
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any

from tfs_async.testing.addresses import ListenerAddresses
from tfs_async.testing.cli import READY_PREFIX

__all__ = ["ModelServerProcess", "ServerProcessError"]


class ServerProcessError(RuntimeError):
    """The child server failed to start or died; the message carries its stderr tail."""


class ModelServerProcess(ListenerAddresses):
    """The TF Serving emulator in its own process (sync and async context manager).

    Args:
        model_config_file: ``--model_config_file``.
        model_name / model_base_path: ``--model_name`` / ``--model_base_path`` (one SavedModel).
        python_models: ``--python_models`` factories, ``"package.module:function"``.
        grpc_port / rest_port: 0 picks a free port; ``None`` disables the listener.
        host: address both listeners bind.
        rest_api_timeout_in_ms, enable_serialization_as_tensor_content,
        model_config_file_poll_wait_seconds: the flags of the same names.
        faults / fault_seed: fault rules as plain data (see
            :func:`~tfs_async.testing.faults.fault_from_dict`) and their seed.
        extra_args: further command-line flags, appended as given.
        startup_timeout: seconds to wait for the ready line before killing the child.
        env: environment of the child (default: this process's).
        python: the interpreter that runs the child.
    """

    def __init__(
        self,
        *,
        model_config_file: str | os.PathLike[str] | None = None,
        model_name: str | None = None,
        model_base_path: str | os.PathLike[str] | None = None,
        python_models: Sequence[str] = (),
        grpc_port: int | None = 0,
        rest_port: int | None = 0,
        host: str = "127.0.0.1",
        rest_api_timeout_in_ms: int = 30000,
        enable_serialization_as_tensor_content: bool = False,
        model_config_file_poll_wait_seconds: float = 0,
        faults: Sequence[Mapping[str, Any]] = (),
        fault_seed: int = 0,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        args = [
            python,
            "-m",
            "tfs_async.testing",
            f"--port={-1 if grpc_port is None else grpc_port}",
            f"--rest_api_port={-1 if rest_port is None else rest_port}",
            f"--host={host}",
            f"--rest_api_timeout_in_ms={rest_api_timeout_in_ms}",
            f"--model_config_file_poll_wait_seconds={model_config_file_poll_wait_seconds}",
        ]
        if enable_serialization_as_tensor_content:
            args.append("--enable_serialization_as_tensor_content=true")
        if model_config_file is not None:
            args.append(f"--model_config_file={os.fspath(model_config_file)}")
        if model_name is not None:
            args.append(f"--model_name={model_name}")
        if model_base_path is not None:
            args.append(f"--model_base_path={os.fspath(model_base_path)}")
        args.extend(f"--python_models={spec}" for spec in python_models)
        if faults:
            args.extend(
                [f"--faults={json.dumps(list(map(dict, faults)))}", f"--fault_seed={fault_seed}"]
            )
        args.extend(extra_args)
        self.args: list[str] = args
        self.host = host
        self._startup_timeout = startup_timeout
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._drain: threading.Thread | None = None
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self.pid: int | None = None

    # -- addresses (grpc_target, rest_url: ListenerAddresses) ----------------

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- sync lifecycle ----------------------------------------------------

    def start(self) -> None:
        """Start the child and wait for its ready line (kills it on failure or timeout)."""
        if self._proc is not None:
            raise RuntimeError("ModelServerProcess is already started")
        # stderr goes to a file: the child can log freely and we can quote it on failure.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _terminate)
        self._proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self._env,
        )
        try:
            ready = self._wait_ready(self._proc)
        except BaseException:
            self._terminate(kill_after=0.0)
            raise
        self.grpc_port = ready.get("grpc_port")
        self.rest_port = ready.get("rest_port")
        self.pid = self._proc.pid

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the child, wait up to ``timeout`` s, then SIGKILL; returns its exit status.

        Idempotent; the child is always reaped (never left a zombie).
        """
        return self._terminate(kill_after=timeout)

    def __enter__(self) -> ModelServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- async lifecycle ---------------------------------------------------

    async def astart(self) -> None:
        """:meth:`start` without blocking the event loop."""
        await asyncio.to_thread(self.start)

    async def astop(self, timeout: float = 10.0) -> int | None:
        """:meth:`stop` without blocking the event loop."""
        return await asyncio.to_thread(self.stop, timeout)

    async def __aenter__(self) -> ModelServerProcess:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # -- internals ---------------------------------------------------------

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
        assert proc.stdout is not None
        stdout = proc.stdout
        found: dict[str, Any] = {}
        done = threading.Event()

        def read_stdout() -> None:
            # One thread reads stdout to EOF: first the ready line, then whatever
            # follows, so the child never blocks on a full pipe.
            for raw in stdout:
                line = raw.decode("utf-8", errors="replace").strip()
                if not done.is_set() and line.startswith(READY_PREFIX):
                    found.update(json.loads(line[len(READY_PREFIX) :]))
                    done.set()
            done.set()

        self._drain = threading.Thread(target=read_stdout, name="tfs-server-stdout", daemon=True)
        self._drain.start()
        if not done.wait(self._startup_timeout):
            raise ServerProcessError(
                f"server process gave no ready line within {self._startup_timeout}s"
                f"{self._stderr_tail()}"
            )
        if not found:
            proc.wait(timeout=self._startup_timeout)
            raise ServerProcessError(
                f"server process exited with status {proc.returncode} before serving"
                f"{self._stderr_tail()}"
            )
        return found

    def _terminate(self, *, kill_after: float) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=kill_after if kill_after > 0 else 0.5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._drain is not None:
            self._drain.join(timeout=5.0)
            self._drain = None
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.grpc_port = self.rest_port = None
        return proc.returncode

    def _stderr_tail(self, limit: int = 4000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", errors="replace")[-limit:].strip()
        return f"; its stderr ends with:\n{text}" if text else ""

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return (
            f"ModelServerProcess({state}, grpc_port={self.grpc_port}, rest_port={self.rest_port})"
        )
