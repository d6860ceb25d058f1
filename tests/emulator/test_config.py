"""models.config text format: parse, format, build, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfs_async.config import (
    ConfigError,
    format_model_server_config,
    model_config,
    model_server_config,
    parse_model_server_config,
    read_model_server_config,
)

# The example from TF Serving's serving_config.md shape, as users write it.
TF_STYLE = """
model_config_list {
  config {
    name: 'din'
    base_path: '/models/din'
    model_platform: 'tensorflow'
    model_version_policy { specific { versions: 100000 versions: 100001 } }
    version_labels { key: 'canary' value: 100000 }
    version_labels { key: 'stable' value: 100001 }
  }
  config { name: 'other' base_path: '/models/other' model_version_policy { all {} } }
  config {
    name: 'third' base_path: '/models/third'
    model_version_policy { latest { num_versions: 3 } }
  }
}
"""


def test_parses_tf_serving_config() -> None:
    cfg = parse_model_server_config(TF_STYLE)
    din, other, third = cfg.model_config_list.config
    assert (din.name, din.base_path, din.model_platform) == ("din", "/models/din", "tensorflow")
    assert list(din.model_version_policy.specific.versions) == [100000, 100001]
    assert dict(din.version_labels) == {"canary": 100000, "stable": 100001}
    assert other.model_version_policy.WhichOneof("policy_choice") == "all"
    assert third.model_version_policy.latest.num_versions == 3


def test_builder_matches_parsed_text_and_roundtrips() -> None:
    built = model_server_config(
        [
            model_config(
                "din",
                "/models/din",
                versions=[100000, 100001],
                labels={"canary": 100000, "stable": 100001},
            ),
            model_config("other", "/models/other", platform="", all_versions=True),
            model_config("third", "/models/third", platform="", latest=3),
        ]
    )
    assert built == parse_model_server_config(TF_STYLE)
    assert parse_model_server_config(format_model_server_config(built)) == built


def test_syntax_error_names_line_and_file(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text("model_config_list {\n  config {\n    name: 'x'\n    bogus: 1\n  }\n}\n")
    with pytest.raises(ConfigError) as info:
        read_model_server_config(path)
    assert info.value.line == 4
    assert info.value.path == str(path)
    assert str(path) in info.value.message
    assert "bogus" in info.value.message
    # Messages speak of TF's message types, not our proto package.
    assert "tfs_async" not in info.value.message


def test_unterminated_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="line"):
        parse_model_server_config("model_config_list { config { name: 'x' ")


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
            st.lists(st.integers(0, 2**40), max_size=3),
            st.dictionaries(
                st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.integers(0, 2**40), max_size=2
            ),
        ),
        max_size=4,
        unique_by=lambda t: t[0],
    )
)
def test_format_then_parse_is_identity(models: list[tuple[str, list[int], dict[str, int]]]) -> None:
    cfg = model_server_config(
        [
            model_config(name, f"/m/{name}", versions=versions or None, labels=labels)
            for name, versions, labels in models
        ]
    )
    assert parse_model_server_config(format_model_server_config(cfg)) == cfg


def test_builder_validation() -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        model_config("")
    with pytest.raises(ValueError, match="latest must be >= 1"):
        model_config("m", latest=0)
