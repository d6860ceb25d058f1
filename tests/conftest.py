"""Shared test fixtures: where TF Serving's reference material lives."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """TF Serving's reference material (SPEC.md, vectors.json, models/).

    ``TFS_ASYNC_SHARED`` overrides the default ``../shared`` beside the checkout.
    """
    root = Path(os.environ.get("TFS_ASYNC_SHARED", REPO.parent / "shared"))
    path = root / "tfserving"
    if not (path / "vectors.json").is_file():
        raise RuntimeError(f"TF Serving reference material not found at {path}")
    return path


def load_vectors(*kinds: str) -> list[dict[str, Any]]:
    """The vectors.json cases of the given kinds (all when none given)."""
    cases: list[dict[str, Any]] = json.loads((shared_dir() / "vectors.json").read_text())
    return [c for c in cases if not kinds or c["kind"] in kinds]


@pytest.fixture(scope="session")
def tfserving_dir() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return shared_dir() / "models"
