"""The protocol benchmark: gRPC vs HTTP/REST, latency and throughput (``tfs-async bench``).

It drives :class:`tfs_async.client.Client` over both transports with the same
model and tensors, next to baselines measured in the same run (bare grpc.aio and
aiohttp floors, typical user code, Google's stub and ovmsclient when installed),
and writes JSON, Markdown and PNG results. Modules, one job each:

- :mod:`~tfs_async.bench.plan`: what a run sweeps (``QUICK``, ``FULL``);
- :mod:`~tfs_async.bench.payloads`: the tensors and the baselines' prebuilt bytes;
- :mod:`~tfs_async.bench.contenders`, :mod:`~tfs_async.bench.baselines`: what is driven;
- :mod:`~tfs_async.bench.loadgen`: closed and open (fixed-rate) load loops;
- :mod:`~tfs_async.bench.stats`: HDR-histogram latencies;
- :mod:`~tfs_async.bench.codec_split`: client encode/decode timed apart;
- :mod:`~tfs_async.bench.runner`: the interleaved sweep;
- :mod:`~tfs_async.bench.results`: what a sweep measured;
- :mod:`~tfs_async.bench.aggregate`, :mod:`~tfs_async.bench.verdict`: repeats combined, winners;
- :mod:`~tfs_async.bench.report`, :mod:`~tfs_async.bench.plots`: the output files;
- :mod:`~tfs_async.bench.models`: the identity model the emulator serves;
- :mod:`~tfs_async.bench.cli`: the ``tfs-async bench`` command.

The optional dependencies (hdrhistogram, matplotlib, tqdm) are the ``bench``
extra and are imported only when a benchmark runs.
"""

from __future__ import annotations
