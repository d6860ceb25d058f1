"""The ``tfs-async`` command: ``serve`` (the TF Serving emulator), ``bench``, and the client
subcommands ``metadata``, ``status``, ``predict``, ``classify``, ``regress``, ``reload-config``.

Each subcommand lives with the code it drives; this module only dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    from tfs_async.bench import cli as bench_cli
    from tfs_async.commands import add_client_commands
    from tfs_async.testing import cli as serve_cli

    parser = argparse.ArgumentParser(
        prog="tfs-async", description="asyncio client SDK for TensorFlow Serving"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the TF Serving emulator (tensorflow_model_server's flag names)",
        description="Run the TF Serving emulator (gRPC + REST) on 127.0.0.1.",
    )
    serve_cli.add_arguments(serve)
    serve.set_defaults(run=serve_cli.run)
    bench = sub.add_parser(
        "bench",
        help="benchmark gRPC vs HTTP latency and throughput",
        description="Benchmark gRPC vs HTTP against the embedded emulator or a real TF Serving.",
    )
    bench_cli.add_arguments(bench)
    bench.set_defaults(run=bench_cli.run)
    add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tfs-async`` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
