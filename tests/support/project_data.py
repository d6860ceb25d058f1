"""The project's own test data in ``tests/data``, made by the scripts there (not TF Serving's)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

TF1_HALF_PLUS_THREE = DATA_DIR / "tf1_half_plus_three"
"""Base path of a TF1 SavedModel (asset + main_op) behaving like TF Serving's half_plus_three."""
