"""``tfs-async bench -f out.csv``: the results in Triton ``perf_analyzer``'s CSV layout.

``perf_analyzer -f FILE`` writes one row per load level it measured, with the
columns of its report writer (``report_writer.cc`` in triton-inference-server's
perf_analyzer). Against a TF Serving backend it has no server-side statistics,
so its header reads ``Concurrency,Inferences/Second,Client Send,Client Recv,``
``p50 latency,p90 latency,p95 latency,p99 latency``.

Latencies are microseconds (integers), ``Inferences/Second`` the measured
throughput, and rows go in increasing ``Inferences/Second`` order. Plots and
scripts written for those files read this one unchanged.

How our figures fill them:

* ``Concurrency``: the closed-loop cell's workers (requests in flight); open-loop
  cells (a fixed arrival rate) have no place in this layout and are left out;
* ``Inferences/Second``: successful requests per second over the measured window
  (repeats of a cell pooled: their requests over their time); one request is one
  inference, whatever its rows, as with ``perf_analyzer -b 1``;
* ``Client Send`` / ``Client Recv``: ``0``: the bench times whole requests, not
  their serialization apart (see the Markdown report's codec table for that);
* ``pNN latency``: from the cell's latency histogram (repeats merged), in us.

Several contenders and payloads share the file: each row ends with the columns
``Contender,Protocol,Payload,Requests,Errors`` after perf_analyzer's, and rows are
grouped by contender and payload, each group in perf_analyzer's order.

>>> PERF_ANALYZER_COLUMNS[:2], PERF_ANALYZER_COLUMNS[-1]
(('Concurrency', 'Inferences/Second'), 'p99 latency')
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from tfs_async.bench.loadgen import LoadResult
from tfs_async.bench.results import Cell
from tfs_async.bench.stability import merge

__all__ = ["EXTRA_COLUMNS", "PERCENTILES", "PERF_ANALYZER_COLUMNS", "rows", "write_perf_csv"]

#: the latency percentiles perf_analyzer reports
PERCENTILES = (50, 90, 95, 99)

#: perf_analyzer's columns for a backend without server statistics, in its order
PERF_ANALYZER_COLUMNS = (
    "Concurrency",
    "Inferences/Second",
    "Client Send",
    "Client Recv",
    *(f"p{p} latency" for p in PERCENTILES),
)

#: ours, after perf_analyzer's
EXTRA_COLUMNS = ("Contender", "Protocol", "Payload", "Requests", "Errors")


def _row(concurrency: int, load: LoadResult, extra: Sequence[object]) -> list[object]:
    latencies = [round(load.histogram.percentile_us(p)) for p in PERCENTILES]
    return [concurrency, round(load.rps, 4), 0, 0, *latencies, *extra]


def rows(cells: Iterable[Cell]) -> list[list[object]]:
    """One row per (contender, payload, concurrency) of the closed-loop cells, repeats pooled."""
    grouped: dict[tuple[str, str, str], dict[int, list[LoadResult]]] = {}
    for cell in cells:
        if cell.mode != "closed":
            continue
        key = (cell.contender, cell.protocol, cell.payload)
        grouped.setdefault(key, {}).setdefault(cell.concurrency, []).append(cell.result)
    out: list[list[object]] = []
    for (contender, protocol, payload), levels in grouped.items():
        group = []
        for concurrency, results in levels.items():
            load = merge(results)
            extra = (contender, protocol, payload, load.requests, load.error_count)
            group.append((load.rps, _row(concurrency, load, extra)))
        group.sort(key=lambda item: item[0])  # perf_analyzer: increasing throughput
        out.extend(row for _, row in group)
    return out


def write_perf_csv(cells: Iterable[Cell], path: Path) -> Path:
    """Write ``cells`` to ``path`` in perf_analyzer's ``-f`` layout; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*PERF_ANALYZER_COLUMNS, *EXTRA_COLUMNS])
        writer.writerows(rows(cells))
    return path
