"""Helpers of the command-line tests: ``tfs-async serve`` and ``tfs-async`` in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tfs_async.testing.cli import READY_PREFIX

if sys.version_info >= (3, 11):
    within = asyncio.timeout
else:  # aiohttp depends on async-timeout before Python 3.11
    import async_timeout  # type: ignore[import-not-found, unused-ignore]

    within = async_timeout.timeout

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Bound of every subprocess wait: start-up imports grpc, aiohttp and numpy on a busy machine.
PROCESS_TIMEOUT = 60.0
PROTOCOLS = ["grpc", "http"]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, with the test models importable and no target set."""
    env = {k: v for k, v in os.environ.items() if k != "TFS_ASYNC_TARGET"}
    paths = [str(REPO), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env.update(extra)
    return env


@dataclass
class ServeProcess:
    """A running ``tfs-async serve`` child and its two targets."""

    proc: subprocess.Popen[str]
    grpc_port: int
    rest_port: int
    stderr: IO[str]

    @property
    def grpc(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def target(self, protocol: str) -> str:
        return self.grpc if protocol == "grpc" else self.http

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not end in time; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(PROCESS_TIMEOUT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.stderr.close()
        return self.proc.returncode


def start_serve(*flags: str) -> ServeProcess:
    """``tfs-async serve --port 0 --rest_api_port 0 FLAGS``, once it printed its ports."""
    stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by ServeProcess.stop
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfs_async.cli", "serve", "--port=0", "--rest_api_port=0", *flags],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=child_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True)
    reader.start()
    try:
        line = lines.get(timeout=PROCESS_TIMEOUT)
    except queue.Empty:
        line = ""
    reader.join(PROCESS_TIMEOUT)
    if not line.startswith(READY_PREFIX):
        proc.kill()
        proc.wait(PROCESS_TIMEOUT)
        stderr.seek(0)
        raise RuntimeError(f"tfs-async serve did not start: {line!r} {stderr.read()[-2000:]}")
    ready = json.loads(line[len(READY_PREFIX) :])
    return ServeProcess(proc, ready["grpc_port"], ready["rest_port"], stderr)


@dataclass
class Outcome:
    """What a ``tfs-async`` run left: exit status, stdout, stderr."""

    code: int
    out: str
    err: str


def run_cli(
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Outcome:
    """``tfs-async ARGS`` in a subprocess (bounded by PROCESS_TIMEOUT)."""
    done = subprocess.run(
        [sys.executable, "-m", "tfs_async.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        env=env if env is not None else child_env(),
        cwd=cwd,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def one_line_error(outcome: Outcome) -> str:
    """The single ``tfs-async: error: ...`` line on stderr (asserting there is no traceback)."""
    assert "Traceback" not in outcome.err, outcome.err
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert len(lines) == 1, outcome.err
    assert lines[0].startswith("tfs-async: error: "), outcome.err
    return lines[0]


def argv(*parts: str | Sequence[str]) -> list[str]:
    """Flatten strings and lists of strings into one argument list."""
    out: list[str] = []
    for part in parts:
        out.extend([part] if isinstance(part, str) else part)
    return out
