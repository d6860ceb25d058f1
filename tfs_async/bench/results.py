"""What a run measured: one :class:`Cell` per load run, gathered in a :class:`BenchResult`."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

from tfs_async.bench.codec_split import CodecTiming
from tfs_async.bench.loadgen import LoadResult

__all__ = ["BenchResult", "Cell", "machine_info"]


@dataclass
class Cell:
    """One measured run of one contender on one payload at one load."""

    contender: str
    protocol: str
    role: str
    payload: str
    mode: str  # "closed" (N workers) or "open" (fixed arrival rate)
    concurrency: int
    repeat: int
    result: LoadResult

    def as_dict(self) -> dict[str, Any]:
        """Every raw figure of the cell, JSON-ready (the histogram in HdrHistogram's encoding)."""
        r = self.result
        return {
            "contender": self.contender,
            "protocol": self.protocol,
            "role": self.role,
            "payload": self.payload,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "repeat": self.repeat,
            "ok": r.ok,
            "errors": dict(r.errors),
            "warmup_errors": r.warmup_errors,
            "first_error": r.first_error,
            "wall_s": r.wall_s,
            "cpu_s": r.cpu_s,
            "rps": r.rps,
            "cpu_us_per_request": r.cpu_us_per_request,
            "target_rate": r.target_rate,
            "max_send_lag_us": r.max_send_lag_us,
            "latency_us": r.histogram.summary().as_dict(),
            "hdr_histogram_ns": r.histogram.encode(),
        }


@dataclass
class BenchResult:
    """Everything a run measured, and what it could not measure (``notes``)."""

    meta: dict[str, Any]
    contenders: list[dict[str, str]]
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    wire: dict[str, dict[str, dict[str, int | None]]] = field(default_factory=dict)
    codec: dict[str, dict[str, CodecTiming]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: payload -> contender -> seconds one request would take, where it was not sent
    estimated_s: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The whole result, JSON-ready."""
        return {
            "meta": self.meta,
            "contenders": self.contenders,
            "payloads": self.payloads,
            "wire_bytes": self.wire,
            "estimated_request_s": self.estimated_s,
            "codec_us": {
                p: {k: t.as_dict() for k, t in by.items()} for p, by in self.codec.items()
            },
            "notes": self.notes,
            "cells": [c.as_dict() for c in self.cells],
        }


def machine_info() -> dict[str, Any]:
    """Where the figures were measured: CPU, cores, OS, Python and library versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for module in ("grpc", "aiohttp", "numpy", "orjson", "google.protobuf"):
        with contextlib.suppress(ImportError):
            versions[module] = str(getattr(__import__(module, fromlist=["_"]), "__version__", "?"))
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
    }
