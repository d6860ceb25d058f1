"""Version policies, per-version states and load gates, as TF Serving's manager keeps them.

>>> from tfs_async._proto.model_server_config_pb2 import FileSystemStoragePathSourceConfig
>>> policy = FileSystemStoragePathSourceConfig.ServableVersionPolicy()
>>> aspired_versions(policy, [1, 2, 3])   # no policy set: latest 1, TF's default
[3]
>>> policy.specific.versions.extend([1, 5])
>>> aspired_versions(policy, [1, 2, 3])   # only versions that exist
[1]
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from tfs_async._proto import get_model_status_pb2, model_server_config_pb2
from tfs_async.errors import StatusCode
from tfs_async.types import VersionState

__all__ = ["LoadGate", "LoadGates", "VersionRecord", "aspired_versions", "policy_text"]

VersionPolicy = model_server_config_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


def aspired_versions(policy: VersionPolicy, available: Sequence[int]) -> list[int]:
    """The versions a policy wants served, ascending, out of those that exist.

    ``latest {num_versions: n}`` (default when unset: n = 1) takes the n highest,
    ``all`` takes every one, ``specific`` those listed that exist.
    """
    versions = sorted(set(available))
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return versions
    if kind == "specific":
        wanted = set(policy.specific.versions)
        return [v for v in versions if v in wanted]
    n = policy.latest.num_versions if kind == "latest" else 1
    # TF treats num_versions 0 as 1 (the proto default means "unset").
    n = max(1, n)
    return versions[-n:]


def policy_text(policy: VersionPolicy) -> str:
    """A short description of a policy for messages.

    >>> policy_text(VersionPolicy(all=VersionPolicy.All()))
    'all'
    """
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return "all"
    if kind == "specific":
        return f"specific {list(policy.specific.versions)}"
    n = policy.latest.num_versions if kind == "latest" else 1
    return f"latest {max(1, n)}"


@dataclass
class VersionRecord:
    """One version's observable state and, once it failed, its error."""

    version: int
    state: VersionState = VersionState.START
    error_code: StatusCode = StatusCode.OK
    error_message: str = ""

    def to_proto(self) -> get_model_status_pb2.ModelVersionStatus:
        """The ``ModelVersionStatus`` GetModelStatus reports."""
        status = get_model_status_pb2.ModelVersionStatus(
            version=self.version,
            state=int(self.state),  # type: ignore[arg-type]
        )
        status.status.error_code = int(self.error_code)  # type: ignore[assignment]
        status.status.error_message = self.error_message
        return status


@dataclass
class LoadGate:
    """Holds the loading (or unloading) of matching versions until released.

    ``reached`` is set when a matching version is held at the gate (its state
    is then LOADING, or UNLOADING), so a test can observe that state without
    sleeping; :meth:`release` lets it proceed.
    """

    name: str
    version: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, name: str, version: int) -> bool:
        """Whether this gate holds ``name`` version ``version``."""
        return self.name == name and (self.version is None or self.version == version)

    def release(self) -> None:
        """Let held and future matching versions proceed."""
        self.opened.set()

    async def wait_reached(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until a matching version is held at the gate."""
        await asyncio.wait_for(self.reached.wait(), timeout)


class LoadGates:
    """The gates of one kind (load or unload) a core consults."""

    def __init__(self) -> None:
        self._gates: list[LoadGate] = []

    def add(self, name: str, version: int | None = None) -> LoadGate:
        """A new gate for ``name`` (all versions when ``version`` is None)."""
        gate = LoadGate(name, version)
        self._gates.append(gate)
        return gate

    async def pass_through(self, name: str, version: int) -> None:
        """Wait at every matching unreleased gate."""
        for gate in list(self._gates):
            if gate.matches(name, version) and not gate.opened.is_set():
                gate.reached.set()
                await gate.opened.wait()

    def release_all(self) -> None:
        """Open every gate (on shutdown, so nothing stays held)."""
        for gate in self._gates:
            gate.opened.set()
