"""Client options: defaults with per-call overrides (TLS settings: :mod:`tfs_async.transport.tls`).

>>> opts = ClientOptions(timeout=5.0)
>>> opts.merged(timeout=1.0, max_retries=0).timeout
1.0
>>> opts.merged(metadata={"authorization": "Bearer t"}).metadata
(('authorization', 'Bearer t'),)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tfs_async.batching.options import Batching
from tfs_async.retry import RetryPolicy
from tfs_async.transport.tls import TLSConfig

__all__ = ["DEFAULT_TIMEOUT", "ClientOptions", "MetadataLike", "TLSConfig", "normalize_metadata"]

# Call metadata (gRPC) / headers (HTTP): a mapping or (key, value) pairs.
MetadataLike = Mapping[str, str] | Sequence[tuple[str, str]]


def normalize_metadata(metadata: MetadataLike | None) -> tuple[tuple[str, str], ...]:
    """Metadata as a tuple of (key, value) pairs; gRPC wants lower-case keys.

    >>> normalize_metadata({"X-Token": "a"})
    (('x-token', 'a'),)
    """
    if not metadata:
        return ()
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    return tuple((str(k).lower(), str(v)) for k, v in items)


#: seconds a call may take, all attempts included, unless told otherwise
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class ClientOptions:
    """What every call of a client uses unless the call says otherwise.

    Attributes:
        timeout: seconds for the whole call, all attempts included (default 60);
            ``None``: no deadline.
        max_retries: retries after the first attempt (0 disables retries).
        retry: which failures are retried and how (see :mod:`tfs_async.retry`).
        validate: check inputs against the model's metadata before sending.
        cast: convert inputs to the signature's dtypes where numpy's ``same_kind``
            rules allow (e.g. float64 -> float32); implies fetching metadata.
        metadata: call metadata (gRPC) / headers (HTTP) sent with every attempt.
        compress: gzip request bodies (HTTP) / gzip call compression (gRPC).
        wait_for_ready: a call that reaches no server (refused, unreachable, not
            resolved) waits for one within its deadline and is then sent, as
            gRPC's wait-for-ready (default). ``False``: fail fast, such failures
            are ordinary UNAVAILABLE errors under the retry policy.
        batching: merge concurrent ``predict`` calls into batched requests
            (:class:`~tfs_async.batching.Batching`); ``None``: every call alone.
    """

    timeout: float | None = DEFAULT_TIMEOUT
    max_retries: int = 2
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    validate: bool = False
    cast: bool = False
    # Not in repr: values are often credentials (authorization tokens).
    metadata: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    compress: bool = False
    wait_for_ready: bool = True
    batching: Batching | None = None

    def __post_init__(self) -> None:
        timeout = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not timeout > 0  # NaN too
        ):
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ValueError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise ValueError(f"retry must be a RetryPolicy, got {type(self.retry).__name__}")
        if self.batching is not None and not isinstance(self.batching, Batching):
            raise TypeError(f"batching must be a tfs_async.Batching or None, got {self.batching!r}")

    def merged(self, **overrides: Any) -> ClientOptions:
        """A copy with the given options replaced (``metadata`` may be a mapping).

        An unknown option name raises TypeError naming it and the known ones.
        """
        unknown = sorted(set(overrides) - set(self.__dataclass_fields__))
        if unknown:
            raise TypeError(
                f"unknown client option(s) {', '.join(unknown)}; "
                f"per-call options are {', '.join(self.__dataclass_fields__)}"
            )
        if "metadata" in overrides:
            overrides["metadata"] = normalize_metadata(overrides["metadata"])
        return replace(self, **overrides)
