"""TF Serving's Prometheus page (``--monitoring_config_file``), for the metrics a client drives.

TF Serving registers TensorFlow monitoring metrics and its ``PrometheusExporter``
(``util/prometheus_exporter.cc``) prints every one: the name with each character
outside ``[a-zA-Z0-9_]`` turned into ``:`` (``/tensorflow/serving/request_count``
becomes ``:tensorflow:serving:request_count``), a ``# TYPE`` line (no ``# HELP``),
counters as ``NAME{label="v",...} N`` (``NAME{} N`` without labels, no ``_total``
suffix), histograms as cumulative ``_bucket{...,le="..."}`` lines ending in
``le="+Inf"`` plus ``_sum`` and ``_count``; metrics sorted by name, points by
label values; ``Content-Type: text/plain``.

The emulator keeps the metrics whose values client traffic decides:

* ``/tensorflow/serving/request_count`` {model_name, status}: gRPC Predict,
  Classify and Regress (``model_servers/prediction_service_impl.cc``) and every
  REST request (``model_servers/http_server.cc``); status is the code's name;
* ``/tensorflow/serving/request_latency`` {model_name, API, entrypoint}:
  successful calls only, microseconds, buckets ``Exponential(10, 1.8, 33)``
  (``servables/tensorflow/util.cc``);
* ``/tensorflow/serving/request_example_counts`` {model} and
  ``/tensorflow/serving/request_example_count_total`` {model}: examples per
  Classify/Regress (``util.cc``);
* with ``--enable_batching``: ``/tensorflow/serving/batching_session/queuing_latency``
  {thread_pool_name} and ``/tensorflow/serving/batching_session/wrapped_run_count``
  (``batching/batching_session.cc``).

prometheus-client is not used: it cannot write this page (it adds ``# HELP``,
``_total``/``_created`` series and omits ``{}``), and the format is a few lines.

>>> metrics = Metrics()
>>> metrics.count_request("hpt", "OK")
>>> metrics.render().splitlines()[-1]
':tensorflow:serving:request_count{model_name="hpt",status="OK"} 1'
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Histogram", "Metrics", "prometheus_name"]


def prometheus_name(name: str) -> str:
    """A TF metric name as PrometheusExporter prints it.

    >>> prometheus_name("/tensorflow/serving/request_count")
    ':tensorflow:serving:request_count'
    """
    sanitized = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return "_" + sanitized if sanitized[:1].isdigit() else sanitized


def _exponential(scale: float, growth: float, count: int) -> tuple[float, ...]:
    limits = [scale]
    for _ in range(count - 1):
        limits.append(limits[-1] * growth)
    return tuple(limits)


def _g(value: float) -> str:
    """absl::StrCat(double): six significant digits."""
    return f"{value:g}"


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class Histogram:
    """A TF monitoring histogram: bucket i counts values below ``limits[i]`` (last: +Inf)."""

    limits: tuple[float, ...]
    buckets: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0] * (len(self.limits) + 1)

    def add(self, value: float) -> None:
        """Record one value."""
        self.buckets[bisect.bisect_right(self.limits, value)] += 1
        self.total += value


_LATENCY_BUCKETS = _exponential(10, 1.8, 33)
_EXAMPLE_BUCKETS = _exponential(1, 2, 15)
_QUEUING_BUCKETS = _exponential(100, 1.2, 52)

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """The metric values of one emulated server, and their Prometheus page."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, int]] = {}
        self._histograms: dict[str, dict[Labels, Histogram]] = {}
        self._limits: dict[str, tuple[float, ...]] = {}

    # -- recording ---------------------------------------------------------

    def counter(self, name: str, labels: Labels, by: int = 1) -> None:
        """Add ``by`` to counter ``name`` at ``labels`` (creating both as needed)."""
        cells = self._counters.setdefault(name, {})
        cells[labels] = cells.get(labels, 0) + by

    def declare_counter(self, name: str) -> None:
        """Make counter ``name`` appear on the page even before it counts anything."""
        self._counters.setdefault(name, {})

    def observe(self, name: str, labels: Labels, value: float, limits: Sequence[float]) -> None:
        """Add ``value`` to histogram ``name`` at ``labels``."""
        self._limits.setdefault(name, tuple(limits))
        cells = self._histograms.setdefault(name, {})
        histogram = cells.get(labels)
        if histogram is None:
            histogram = cells[labels] = Histogram(self._limits[name])
        histogram.add(value)

    def count_request(self, model_name: str, status: str) -> None:
        """``request_count``: one request for ``model_name`` ended with ``status`` (a code name)."""
        self.counter(
            "/tensorflow/serving/request_count", (("model_name", model_name), ("status", status))
        )

    def request_latency(self, model_name: str, api: str, entrypoint: str, micros: float) -> None:
        """``request_latency`` of one successful call."""
        self.observe(
            "/tensorflow/serving/request_latency",
            (("model_name", model_name), ("API", api), ("entrypoint", entrypoint)),
            micros,
            _LATENCY_BUCKETS,
        )

    def example_count(self, model_name: str, count: int) -> None:
        """``request_example_counts`` / ``request_example_count_total`` of one Classify/Regress."""
        self.observe(
            "/tensorflow/serving/request_example_counts",
            (("model", model_name),),
            count,
            _EXAMPLE_BUCKETS,
        )
        self.counter(
            "/tensorflow/serving/request_example_count_total", (("model", model_name),), count
        )

    def queuing_latency(self, thread_pool_name: str, micros: float) -> None:
        """``batching_session/queuing_latency`` of one batched task."""
        self.observe(
            "/tensorflow/serving/batching_session/queuing_latency",
            (("thread_pool_name", thread_pool_name),),
            micros,
            _QUEUING_BUCKETS,
        )

    # -- exposition --------------------------------------------------------

    def render(self) -> str:
        """The page PrometheusExporter::GeneratePage writes."""
        lines: list[str] = []
        names = sorted(set(self._counters) | set(self._histograms))
        for name in names:
            prom = prometheus_name(name)
            if name in self._histograms:
                lines.append(f"# TYPE {prom} histogram")
                for labels, histogram in sorted(self._histograms[name].items()):
                    lines.extend(_histogram_lines(prom, labels, histogram))
            else:
                lines.append(f"# TYPE {prom} counter")
                for labels, value in sorted(self._counters[name].items()):
                    lines.append(f"{prom}{{{_labels(labels)}}} {value}")
        return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    return ",".join(f'{key}="{_label_value(value)}"' for key, value in labels)


def _histogram_lines(prom: str, labels: Labels, histogram: Histogram) -> list[str]:
    text = _labels(labels)
    prefix = f"{prom}_bucket{{{text}{',' if text else ''}"
    lines = []
    cumulative = 0
    for index, count in enumerate(histogram.buckets):
        cumulative += count
        limit = _g(histogram.limits[index]) if index < len(histogram.limits) else "+Inf"
        lines.append(f'{prefix}le="{limit}"}} {cumulative}')
    lines.append(f"{prom}_sum{{{text}}} {_g(histogram.total)}")
    lines.append(f"{prom}_count{{{text}}} {cumulative}")
    return lines
