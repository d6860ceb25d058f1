"""Client options and their per-client overrides (no server needed)."""

from __future__ import annotations

import pytest

from tfs_async.client import Client
from tfs_async.options import ClientOptions, normalize_metadata
from tfs_async.retry import RetryPolicy


def test_with_options_overrides_only_what_it_names() -> None:
    client = Client("grpc://h:8500", timeout=5.0, max_retries=4, metadata={"A": "1"})
    other = client.with_options(timeout=1.0, metadata=[("b", "2")])
    assert other.options.timeout == 1.0
    assert other.options.max_retries == 4
    assert other.options.metadata == (("b", "2"),)
    assert client.options.metadata == (("a", "1"),)
    assert other.transport is client.transport
    with pytest.raises(TypeError):
        client.with_options(nonsense=1)


@pytest.mark.parametrize(
    "kwargs", [{"timeout": 0}, {"timeout": -1.0}, {"max_retries": -1}], ids=str
)
def test_invalid_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"timeout|max_retries"):
        ClientOptions(**kwargs)  # type: ignore[arg-type]


def test_defaults() -> None:
    options = ClientOptions()
    assert options.timeout == 60.0  # a stalled server never hangs a caller forever
    assert options.max_retries == 2
    assert options.retry == RetryPolicy()
    assert not options.validate
    assert normalize_metadata(None) == ()
