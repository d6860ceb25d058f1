"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import reference as tfs_reference

# Properties here check behaviour, not speed: on a loaded 2-core machine a per-example
# deadline or the too-slow health check would fail a run for timing alone.
settings.register_profile(
    "tfs_async", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("tfs_async")


@pytest.fixture(scope="session")
def tfserving_dir() -> Path:
    return tfs_reference.shared_dir()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return tfs_reference.models_dir()
