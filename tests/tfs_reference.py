"""Where TF Serving's reference material lives, for tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


def models_dir() -> Path:
    """TF Serving's own test SavedModels and expected metadata."""
    return shared_dir() / "models"


def load_vectors(*kinds: str) -> list[dict[str, Any]]:
    """The vectors.json cases of the given kinds (all when none given), in file order."""
    cases: list[dict[str, Any]] = json.loads((shared_dir() / "vectors.json").read_text())
    return [c for c in cases if not kinds or c["kind"] in kinds]
