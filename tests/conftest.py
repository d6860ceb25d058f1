"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import tfs_reference


@pytest.fixture(scope="session")
def tfserving_dir() -> Path:
    return tfs_reference.shared_dir()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return tfs_reference.models_dir()
