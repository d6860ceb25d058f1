"""REST URLs: TF Serving's grammar, percent-encoding, never a query string."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import reference as tfs_reference
from tfs_async.transport.http import model_path
from tfs_async.types import ModelSpec

_VERBS = {"predict": ":predict", "classify": ":classify", "regress": ":regress"}
# The path_parse cases TF Serving parses into a model: the client must produce exactly that path.
_PARSED = [
    c
    for c in tfs_reference.load_vectors("path_parse")
    if c["expected"]["parse_successful"] and "model_name" in c["expected"]
]


def _spec_and_suffix(case: dict[str, Any]) -> tuple[ModelSpec, str]:
    exp = case["expected"]
    spec = ModelSpec(
        exp["model_name"],
        version=exp.get("model_version"),
        label=exp.get("model_version_label"),
    )
    if "method" in exp:
        suffix = _VERBS[exp["method"]]
    elif exp.get("model_subresource") == "metadata":
        suffix = "/metadata"
    else:
        suffix = ""
    return spec, suffix


@pytest.mark.parametrize("case", _PARSED, ids=[c["id"] for c in _PARSED])
def test_model_path_matches_tf_serving_vector(case: dict[str, Any]) -> None:
    spec, suffix = _spec_and_suffix(case)
    assert model_path("", spec, suffix) == case["input"]["path"]


def test_vectors_cover_names_versions_and_labels() -> None:
    # The parametrized test above must not silently shrink.
    assert len(_PARSED) >= 8


names = st.text(min_size=1, max_size=30)


@given(name=names, label=st.none() | names)
@settings(deadline=None)
def test_any_name_round_trips_and_never_adds_separators(name: str, label: str | None) -> None:
    spec = ModelSpec(name, label=label)
    path = model_path("http://h:1", spec, ":predict")
    rest = path.removeprefix("http://h:1/v1/models/").removesuffix(":predict")
    # A name or label can never add a path segment, a verb or a query.
    assert "?" not in path
    assert "#" not in path
    parts = rest.split("/")
    assert unquote(parts[0]) == name
    if label is None:
        assert len(parts) == 1
    else:
        assert parts[1] == "labels"
        assert unquote(parts[2]) == label
        assert len(parts) == 3
    assert ":" not in rest


def test_version_takes_the_versions_segment() -> None:
    assert model_path("https://h:8501", ModelSpec("m", version=7)) == (
        "https://h:8501/v1/models/m/versions/7"
    )
