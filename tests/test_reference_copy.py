"""The vendored TF Serving reference material is complete and matches its source when present."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest

from tests.support import reference as tfs_reference


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_vendored_copy_has_what_the_tests_read() -> None:
    root = tfs_reference.VENDORED
    for name in ("SPEC.md", "vectors.json", "models/NOTICE", "models/LICENSE"):
        assert (root / name).is_file(), name
    assert (
        root / "models" / "saved_model_half_plus_two_cpu" / "00000123" / "saved_model.pb"
    ).is_file()


def test_vendored_copy_equals_the_source_folder() -> None:
    source = (
        Path(os.environ.get("TFS_ASYNC_SOURCE", tfs_reference.REPO.parent / "shared")) / "tfserving"
    )
    if not (source / "vectors.json").is_file():
        pytest.skip(f"no source reference folder at {source} to compare with (bare clone)")
    ours = tfs_reference.VENDORED
    theirs = _files(source) - {"README.md", "SPEC.md"}
    assert theirs <= _files(ours)
    mismatched = [
        name
        for name in sorted(theirs)
        if not filecmp.cmp(source / name, ours / name, shallow=False)
    ]
    assert mismatched == []
    # Our SPEC.md extends the source's with further cited sections, appended after its text.
    assert (ours / "SPEC.md").read_text().startswith((source / "SPEC.md").read_text().rstrip())
