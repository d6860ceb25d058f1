"""PNG plots of a run (matplotlib, Agg backend: no display needed).

- ``<stem>_cdf_<payload>.png``: latency CDF of every contender, one panel per concurrency level;
- ``<stem>_throughput.png``: requests/s against concurrency, one panel per payload.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from tfs_async.bench._deps import require
from tfs_async.bench.aggregate import Aggregate, AggregateKey
from tfs_async.bench.results import BenchResult

__all__ = ["write_plots"]

_STYLE = {"grpc": "-", "http": "--", "none": ":"}


def _pyplot() -> tuple[Any, Any]:
    matplotlib = require("matplotlib", "matplotlib")
    matplotlib.use("Agg")  # files only; never needs a display
    return require("matplotlib.pyplot", "matplotlib"), require("matplotlib.ticker", "matplotlib")


def _slug(name: str) -> str:
    """A file-name-safe form of a payload name.

    >>> _slug("f32[1x224x224x3]")
    'f32_1x224x224x3'
    """
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def write_plots(
    result: BenchResult, aggs: dict[AggregateKey, Aggregate], out_dir: Path, *, stem: str
) -> list[Path]:
    """Write the CDF and throughput plots; returns their paths."""
    plt, ticker = _pyplot()
    # one colour per contender in every plot, so the figures read alike
    palette = plt.get_cmap("tab10").colors
    colors = {c["key"]: palette[i % len(palette)] for i, c in enumerate(result.contenders)}
    paths: list[Path] = []
    for payload in result.payloads:
        path = _cdf_plot(
            plt, ticker, aggs, payload, colors, out_dir / f"{stem}_cdf_{_slug(payload)}.png"
        )
        if path:
            paths.append(path)
    path = _throughput_plot(
        plt, ticker, aggs, list(result.payloads), colors, out_dir / f"{stem}_throughput.png"
    )
    if path:
        paths.append(path)
    return paths


def _cdf_plot(
    plt: Any,
    ticker: Any,
    aggs: dict[AggregateKey, Aggregate],
    payload: str,
    colors: dict[str, Any],
    path: Path,
) -> Path | None:
    rows = [
        a
        for a in aggs.values()
        if a.payload == payload and a.mode == "closed" and a.role != "harness" and a.ok
    ]
    levels = sorted({a.concurrency for a in rows})
    if not levels:
        return None
    fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 4), squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        for a in sorted((a for a in rows if a.concurrency == level), key=lambda a: a.contender):
            points = a.histogram.cdf_us()
            ax.plot(
                [p[0] / 1000 for p in points],
                [p[1] for p in points],
                _STYLE.get(a.protocol, "-"),
                color=colors.get(a.contender),
                label=a.contender,
            )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # minor labels overlap
        ax.set_title(f"{payload}, concurrency {level}")
        ax.set_xlabel("latency (ms, log)")
        ax.set_ylabel("fraction of requests")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _throughput_plot(
    plt: Any,
    ticker: Any,
    aggs: dict[AggregateKey, Aggregate],
    payloads: list[str],
    colors: dict[str, Any],
    path: Path,
) -> Path | None:
    shown = [
        p for p in payloads if any(a.payload == p and a.mode == "closed" for a in aggs.values())
    ]
    if not shown:
        return None
    cols = min(3, len(shown))
    rows_n = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 4 * rows_n), squeeze=False)
    for i, payload in enumerate(shown):
        ax = axes[i // cols][i % cols]
        by: dict[str, list[Aggregate]] = {}
        for a in aggs.values():
            if a.payload == payload and a.mode == "closed" and a.role != "harness":
                by.setdefault(a.contender, []).append(a)
        for contender, items in sorted(by.items()):
            items.sort(key=lambda a: a.concurrency)
            ax.plot(
                [a.concurrency for a in items],
                [a.rps for a in items],
                _STYLE.get(items[0].protocol, "-"),
                marker="o",
                color=colors.get(contender),
                label=contender,
            )
        levels = sorted({a.concurrency for items in by.values() for a in items})
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_title(payload)
        ax.set_xlabel("concurrency")
        ax.set_ylabel("requests/s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for j in range(len(shown), rows_n * cols):
        axes[j // cols][j % cols].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
