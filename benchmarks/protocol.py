"""The protocol benchmark (gRPC vs HTTP/REST), the same as ``tfs-async bench``.

    python benchmarks/protocol.py --quick
    python benchmarks/protocol.py --grpc HOST:8500 --rest http://HOST:8501 --model bench

Every flag of ``tfs-async bench --help`` applies; results go to benchmarks/results/.
"""

from __future__ import annotations

import sys

from tfs_async.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
