"""Where TF Serving's reference material lives, for tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


VENDORED = REPO / "tests" / "reference"


def upstream_dir() -> Path | None:
    """Another copy of the reference folder, when ``TFS_ASYNC_SHARED`` names one."""
    root = os.environ.get("TFS_ASYNC_SHARED")
    return Path(root) / "tfserving" if root else None


def shared_dir() -> Path:
    """TF Serving's reference material (SPEC.md, vectors.json, models/).

    The copy in ``tests/reference`` (so a bare clone is self-contained); ``TFS_ASYNC_SHARED``
    (a folder holding ``tfserving/``) points the tests at another copy instead.
    """
    path = upstream_dir() or VENDORED
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
