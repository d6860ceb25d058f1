"""Client-side serialization cost, timed apart from the network on the same payloads.

For each protocol the SDK's encoder runs on the payload and its decoder on a
real response body the server sent (kept by the floor baselines); the typical
user's ``json.dumps(tolist())`` / ``json.loads`` pair is timed the same way.
Each figure is the median of repeated runs, in microseconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tfs_async.bench.payloads import Payload
from tfs_async.bench.stats import median

__all__ = ["CodecTiming", "time_call", "time_sdk_codec", "time_typical_json"]


@dataclass(frozen=True)
class CodecTiming:
    """Median encode and decode time of one payload with one codec (us; ``None``: not timed)."""

    encode_us: float | None
    decode_us: float | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The timing as a JSON-ready dict."""
        return asdict(self)


def time_call(fn: Callable[[], object], *, budget_s: float = 0.2, max_runs: int = 200) -> float:
    """Median wall time of ``fn()`` in microseconds: runs until the budget is spent (at least once).

    >>> time_call(lambda: sum(range(10))) >= 0.0
    True
    """
    samples: list[float] = []
    stop = time.perf_counter() + budget_s
    while not samples or (time.perf_counter() < stop and len(samples) < max_runs):
        begin = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - begin) / 1000.0)
    return median(samples)


def time_sdk_codec(
    protocol: str, model: str, payload: Payload, response: bytes | None, *, budget_s: float = 0.2
) -> CodecTiming:
    """Time the SDK's own Predict encoder and decoder for ``protocol`` on ``payload``."""
    try:
        if protocol == "grpc":
            from tfs_async.codec.predict_wire import (
                decode_predict_response,
                encode_predict_request,
            )
            from tfs_async.types import ModelSpec

            spec = ModelSpec(model, signature=payload.signature)
            encode: Callable[[], object] = lambda: encode_predict_request(spec, payload.inputs)  # noqa: E731
            decode: Callable[[bytes], object] = decode_predict_response
        else:
            from tfs_async.codec.json import decode_predict_body, encode_predict_body

            sig = payload.signature
            encode = lambda: encode_predict_body(payload.inputs, signature_name=sig)  # noqa: E731
            decode = decode_predict_body
    except ImportError as exc:
        return CodecTiming(None, None, f"SDK codec unavailable: {exc}")
    encode_us = time_call(encode, budget_s=budget_s)
    if response is None:
        return CodecTiming(encode_us, None, "no response body captured")
    return CodecTiming(encode_us, time_call(lambda: decode(response), budget_s=budget_s))


def time_typical_json(
    payload: Payload, response: bytes | None, *, budget_s: float = 0.2
) -> CodecTiming:
    """Time ``json.dumps({"instances": x.tolist()})`` and ``np.array(json.loads(body)[...])``."""
    array = payload.array
    if array.dtype == object:
        value: Any = [v.decode("utf-8") for v in array.ravel()]
    else:
        value = None

    def encode() -> str:
        return json.dumps({"instances": value if value is not None else array.tolist()})

    encode_us = time_call(encode, budget_s=budget_s)
    if response is None:
        return CodecTiming(encode_us, None, "no response body captured")
    out_key = "outputs"

    def decode() -> object:
        return np.array(json.loads(response)[out_key], dtype=array.dtype)

    return CodecTiming(
        encode_us,
        time_call(decode, budget_s=budget_s),
        'decode timed on the columnar ({"outputs": ...}) body the floor received',
    )
