"""A user's own importable factory of models (``tfs_models`` may name it)."""

from __future__ import annotations

from tfs_async.testing import PythonModel
from tfs_async.testing.half_plus_two import half_plus_two_model


def build() -> list[PythonModel]:
    return [half_plus_two_model("hpt")]
