"""The interop tier: tfs_async checked against Google's own packages.

Every module here is marked ``interop`` and imports ``tensorflow`` and
``tensorflow_serving`` at module level, so a missing package FAILS the tier
instead of skipping it. A run whose ``-m`` expression deselects ``interop``
(``make unit`` in the TensorFlow-free virtualenv) does not collect this folder at
all: its tests would be deselected anyway, and importing them there would fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

# TensorFlow's C++ start-up chatter hides the test output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent


def _interop_selected(config: pytest.Config) -> bool:
    """Whether the run's ``-m`` expression keeps tests marked ``interop``."""
    markexpr: str = config.option.markexpr
    if not markexpr:
        return True

    def is_interop(name: str, /, **_: str | int | bool | None) -> bool:
        return name == "interop"

    return Expression.compile(markexpr).evaluate(is_interop)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.is_relative_to(HERE) and not _interop_selected(config):
        return True
    return None


@pytest.fixture(scope="session")
def half_plus_two_dir(models_dir: Path) -> Path:
    """TF Serving's TF1-style half_plus_two test model (one version, 123)."""
    return models_dir / "saved_model_half_plus_two_cpu"
