"""TF Serving's ``models.config``: parse, format and build ``ModelServerConfig``.

The file is protobuf text format of ``tensorflow.serving.ModelServerConfig``;
our generated classes carry TF's field names, so TF Serving's own files parse.

>>> cfg = parse_model_server_config('''
... model_config_list {
...   config {
...     name: 'din' base_path: '/models/din' model_platform: 'tensorflow'
...     model_version_policy { specific { versions: 100000 versions: 100001 } }
...     version_labels { key: 'canary' value: 100000 }
...   }
... }''')
>>> cfg.model_config_list.config[0].version_labels["canary"]
100000
>>> built = model_server_config([model_config("din", "/models/din", versions=[100000, 100001],
...                                            labels={"canary": 100000})])
>>> built == cfg
True
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from google.protobuf import text_format

from tfs_async._proto import model_server_config_pb2
from tfs_async._proto.model_server_config_pb2 import ModelConfig, ModelServerConfig

__all__ = [
    "ConfigError",
    "format_model_server_config",
    "model_config",
    "model_server_config",
    "parse_model_server_config",
    "read_model_server_config",
]

_Policy = model_server_config_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy
# Our proto package prefixes TF's; error messages should name TF's types.
_OUR_PACKAGE = "tfs_async.tensorflow."


class ConfigError(ValueError):
    """A models.config that cannot be parsed or is not valid.

    Attributes:
        line, column: 1-based position of a syntax error, when known.
        path: the file it came from, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path


def parse_model_server_config(text: str, *, path: str | None = None) -> ModelServerConfig:
    """Parse models.config text; :class:`ConfigError` names the line on bad syntax.

    >>> try:
    ...     parse_model_server_config("model_config_list { config { nme: 'x' } }")
    ... except ConfigError as exc:
    ...     print(exc.line, exc.column, exc.message.split(": ", 1)[1])
    1 30 Message type "tensorflow.serving.ModelConfig" has no field named "nme".
    """
    config = ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        line, column = exc.GetLine(), exc.GetColumn()
        detail = str(exc).replace(_OUR_PACKAGE, "tensorflow.")
        # ParseError's text starts with "line:col : "; keep only the reason.
        if line is not None and detail.startswith(f"{line}:"):
            detail = detail.split(" : ", 1)[-1]
        where = f"{path} " if path else "models.config "
        raise ConfigError(
            f"{where}line {line}, column {column}: {detail}",
            line=line,
            column=column,
            path=path,
        ) from None
    return config


def read_model_server_config(path: str | os.PathLike[str]) -> ModelServerConfig:
    """Read and parse a models.config file (OSError if it cannot be read)."""
    return parse_model_server_config(Path(path).read_text(encoding="utf-8"), path=str(path))


def format_model_server_config(config: ModelServerConfig) -> str:
    """The text format of ``config``, as TF Serving reads it.

    >>> print(format_model_server_config(model_server_config([model_config("m", "/m")])), end="")
    model_config_list {
      config {
        name: "m"
        base_path: "/m"
        model_platform: "tensorflow"
      }
    }
    """
    return str(text_format.MessageToString(config))


def model_config(
    name: str,
    base_path: str = "",
    *,
    platform: str = "tensorflow",
    versions: Sequence[int] | None = None,
    latest: int | None = None,
    all_versions: bool = False,
    labels: Mapping[str, int] | None = None,
) -> ModelConfig:
    """One ``ModelConfig``: a name, a base path, a version policy and labels.

    Give at most one of ``versions`` (specific), ``latest`` (the n newest) and
    ``all_versions``; with none, the policy is unset, which TF reads as latest 1.

    >>> model_config("m", "/models/m", latest=2).model_version_policy.latest.num_versions
    2
    """
    if not name:
        raise ValueError("a model config needs a non-empty name")
    chosen = sum(x for x in (versions is not None, latest is not None, all_versions))
    if chosen > 1:
        raise ValueError(f"model {name!r}: give one of versions, latest and all_versions")
    cfg = ModelConfig(name=name, base_path=base_path, model_platform=platform)
    if versions is not None:
        cfg.model_version_policy.specific.versions.extend(int(v) for v in versions)
    elif latest is not None:
        if latest < 1:
            raise ValueError(f"model {name!r}: latest must be >= 1, got {latest}")
        cfg.model_version_policy.latest.num_versions = latest
    elif all_versions:
        cfg.model_version_policy.all.SetInParent()
    for label, version in (labels or {}).items():
        cfg.version_labels[label] = int(version)
    return cfg


def model_server_config(configs: Iterable[ModelConfig]) -> ModelServerConfig:
    """A ``ModelServerConfig`` holding ``configs`` in a ``model_config_list``."""
    server = ModelServerConfig()
    server.model_config_list.SetInParent()
    server.model_config_list.config.extend(configs)
    return server
