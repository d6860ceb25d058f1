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
        batching: merge concurrent ``predict`` calls into batched requests
            (:class:`~tfs_async.batching.Batching`); ``None``: every call alone.
    """

    timeout: float | None = DEFAULT_TIMEOUT
    max_retries: int = 2
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    validate: bool = False
    cast: bool = False
    metadata: tuple[tuple[str, str], ...] = ()
    compress: bool = False
    batching: Batching | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {self.timeout!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if self.batching is not None and not isinstance(self.batching, Batching):
            raise TypeError(f"batching must be a tfs_async.Batching or None, got {self.batching!r}")

    def merged(self, **overrides: Any) -> ClientOptions:
        """A copy with the given options replaced (``metadata`` may be a mapping)."""
        if "metadata" in overrides:
            overrides["metadata"] = normalize_metadata(overrides["metadata"])
        return replace(self, **overrides)
