"""``python -m tfs_async.testing``: the TF Serving emulator (the flags of ``tfs-async serve``)."""

from __future__ import annotations

import sys

from tfs_async.testing.cli import main

if __name__ == "__main__":
    sys.exit(main())
