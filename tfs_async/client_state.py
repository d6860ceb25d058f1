"""What a :class:`~tfs_async.client.Client` and its ``with_options`` copies share, and the
small rules every call applies to its arguments (model specs, examples, REST format)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from tfs_async.batching import Batcher
from tfs_async.errors import InvalidInputError
from tfs_async.metadata_cache import MetadataCache
from tfs_async.observe import Observer
from tfs_async.options import ClientOptions
from tfs_async.retry import RetryBudget, RetryPolicy
from tfs_async.transport.base import REST_FORMATS, RestFormat, Transport
from tfs_async.types import Features, ModelSpec

__all__ = [
    "MAX_POLL_INTERVAL",
    "MAX_VERSION",
    "SharedState",
    "as_examples",
    "model_spec",
    "rest_format_option",
]


class SharedState:
    """What a client and its ``with_options`` copies share."""

    def __init__(self, transport: Transport, policy: RetryPolicy, metadata_ttl: float) -> None:
        self.transport = transport
        self.budget = RetryBudget(policy.budget_ratio, policy.budget_min_retries)
        self.metadata = MetadataCache(metadata_ttl)
        self.closed = False
        self.observer: Observer | None = None
        #: the server's (host, port), for observers
        self.peer: tuple[str | None, int | None] = (None, None)
        self.batcher = Batcher()
        self._send_tokens: dict[tuple[Any, ...], object] = {}
        self._routes: dict[tuple[Any, ...], object] = {}

    def route(self, spec: ModelSpec, outputs: tuple[str, ...], send_options: object) -> object:
        """One object per model spec, output filter and send options (cheap to hash)."""
        key = (spec.name, spec.version, spec.label, spec.signature, outputs, send_options)
        token = self._routes.get(key)
        if token is None:
            token = self._routes[key] = object()
        return token

    def send_token(self, options: ClientOptions, rest_format: RestFormat | None) -> object:
        """One object per distinct set of options that shape a request (cheap to hash).

        Calls of clients whose tokens differ (other call metadata, say) never merge.
        """
        key = (
            options.metadata,
            options.compress,
            options.max_retries,
            options.retry,
            options.wait_for_ready,
            rest_format,
        )
        return self._send_tokens.setdefault(key, object())


MAX_VERSION = 2**63 - 1
# wait_until_available: its polls back off from poll_interval up to this many seconds.
MAX_POLL_INTERVAL = 1.0


@functools.lru_cache(maxsize=1024)  # specs are frozen: one per distinct call target
def model_spec(
    name: str, version: int | None, label: str | None, signature: str | None = None
) -> ModelSpec:
    try:
        spec = ModelSpec(name, version=version, label=label, signature=signature)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    # gRPC cannot carry it and REST would not route it: refuse it the same way for both.
    if spec.version is not None and not 0 <= spec.version <= MAX_VERSION:
        raise InvalidInputError(
            f"version {spec.version} is out of range: TF Serving versions are int64 >= 0",
            expected=f"0 <= version <= {MAX_VERSION}",
            model=ModelSpec(name),
        )
    return spec


def rest_format_option(value: object) -> RestFormat | None:
    if value is None:
        return None
    for known in REST_FORMATS:
        if value == known:
            return known
    raise ValueError(f"rest_format must be one of {REST_FORMATS} or None, got {value!r}")


def as_examples(examples: Features | Sequence[Features]) -> Sequence[Features]:
    return [examples] if isinstance(examples, Mapping) else examples
