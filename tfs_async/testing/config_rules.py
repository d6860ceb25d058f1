"""The checks TF Serving runs on a new model config before it applies any of it.

``ServerCore::ReloadConfig`` (``model_servers/server_core.cc``) refuses a
``ModelServerConfig`` as a whole, and changes nothing, when one of these fails;
they run in its order, so the first error a config has is the one TF Serving
reports (``tests/reference/SPEC.md`` §7.1, §7.2):

1. :func:`check_transition`: a ``custom_model_config`` is not supported; a
   config of another kind than the one in force cannot replace it;
2. :func:`check_names_and_paths`: a model listed twice; a relative base path;
3. :func:`check_platforms`: a model whose platform changes;
4. :func:`check_version_labels`: a label naming a version that is not AVAILABLE
   (``UpdateModelVersionLabelMap``);
5. :func:`check_entry`, per model: an empty name; a platform other than
   ``tensorflow``.

Each raises :class:`~tfs_async.testing.status.ServingStatus` with TF Serving's
code and message. They are pure: the model manager passes in what it knows.

>>> from tfs_async._proto.model_server_config_pb2 import ModelConfig
>>> try:
...     check_names_and_paths([ModelConfig(name="m", base_path="models/m")], registered=())
... except ServingStatus as refused:
...     print(refused.code.name, refused.message)
INVALID_ARGUMENT Expected model m to have an absolute path or URI; got base_path()=models/m
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from tfs_async._proto import model_server_config_pb2
from tfs_async.testing.status import (
    ServingStatus,
    failed_precondition,
    invalid_argument,
    unimplemented,
)

__all__ = [
    "check_entry",
    "check_names_and_paths",
    "check_platforms",
    "check_transition",
    "check_version_labels",
    "label_unavailable",
    "platform",
]

ModelConfig = model_server_config_pb2.ModelConfig
ModelServerConfig = model_server_config_pb2.ModelServerConfig


def platform(entry: ModelConfig) -> str:
    """The entry's platform; a missing one reads as TensorFlow (TF Serving refuses it)."""
    return entry.model_platform or "tensorflow"


def _is_relative_path(path: str) -> bool:
    """TF's UriIsRelativePath: no scheme, no host and not an absolute path."""
    return "://" not in path and not path.startswith("/")


def label_unavailable(name: str, version: int) -> ServingStatus:
    """TF Serving's refusal of a label on a version that is not AVAILABLE."""
    return failed_precondition(
        f"Request to assign label to version {version} of model {name}, "
        f"which is not currently available for inference",
    )


def check_transition(config: ModelServerConfig, current: ModelServerConfig) -> None:
    """The config's kind: no custom config, and no change of kind from the one in force."""
    kind = config.WhichOneof("config")
    if kind == "custom_model_config":
        raise unimplemented("custom_model_config is not supported by this server")
    old_kind = current.WhichOneof("config")
    if old_kind is not None and kind is not None and kind != old_kind:
        raise failed_precondition(
            "Cannot transition to requested config. It is only legal to transition from "
            "one ModelConfigList to another.",
        )


def check_names_and_paths(listed: Sequence[ModelConfig], registered: Collection[str]) -> None:
    """No model twice; every base path absolute or a URI.

    A model registered with the server by name (a Python model, or a SavedModel
    given to it) may leave its base path empty.
    """
    names: set[str] = set()
    for entry in listed:
        if entry.name in names:
            raise invalid_argument(
                f"Illegal to list model {entry.name} multiple times in config list",
            )
        names.add(entry.name)
    for entry in listed:
        if _is_relative_path(entry.base_path) and not (
            not entry.base_path and entry.name in registered
        ):
            raise invalid_argument(
                f"Expected model {entry.name} to have an absolute path or URI; "
                f"got base_path()={entry.base_path}",
            )


def check_platforms(listed: Sequence[ModelConfig], current: Sequence[ModelConfig]) -> None:
    """No model served now changes its platform."""
    before = {entry.name: platform(entry) for entry in current if entry.name}
    for entry in listed:
        old = before.get(entry.name)
        if old is not None and old != platform(entry):
            raise invalid_argument(
                f"Illegal to change a model's platform. For model {entry.name} platform "
                f"was {old} and new platform requested is {platform(entry)}",
            )


def check_version_labels(
    listed: Sequence[ModelConfig],
    *,
    labels_of: Callable[[str], Mapping[str, int]],
    is_available: Callable[[str, int], bool],
    allow_unavailable: bool,
) -> None:
    """``ServerCore::UpdateModelVersionLabelMap``: labels name AVAILABLE versions.

    The check runs before any model of the new config loads, so a label on a
    model's first config fails unless ``allow_unavailable``
    (``--allow_version_labels_for_unavailable_models``). With it, a new label (or
    one kept on its version) may name any version, but moving an existing label
    still needs the target version AVAILABLE.

    Args:
        listed: the new config's models.
        labels_of: a served model's labels in force (empty for a new model).
        is_available: whether that model's version is AVAILABLE now.
        allow_unavailable: TF Serving's flag.
    """
    for entry in listed:
        current = labels_of(entry.name)
        for label, version in entry.version_labels.items():
            if allow_unavailable and current.get(label, version) == version:
                continue
            if not is_available(entry.name, version):
                raise label_unavailable(entry.name, version)


def check_entry(entry: ModelConfig) -> None:
    """One model's own fields: a name, and the one platform the emulator serves."""
    if not entry.name:
        raise invalid_argument("Model config has an empty name")
    if platform(entry) != "tensorflow":
        raise invalid_argument(
            f"Model {entry.name} requests unsupported platform {entry.model_platform}",
        )
