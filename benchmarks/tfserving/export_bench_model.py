# mypy: disable-error-code="misc,untyped-decorator"
"""Export the benchmark's identity model as a SavedModel that TF Serving can serve.

Needs TensorFlow (``pip install tensorflow-cpu``); the SDK itself does not.

    python benchmarks/tfserving/export_bench_model.py models/bench/1

Signatures, the same as the emulator's ``tfs_async.bench.models``:
- ``serving_default``: ``x`` (float32, any shape) -> ``y`` = ``x``;
- ``bytes``: ``s`` (string, any shape) -> ``s`` = ``s``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf


class Bench(tf.Module):
    """Identities: the response is the request's tensor, so size scales both ways."""

    @tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.float32, name="x")])
    def identity(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.identity(x)}

    @tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.string, name="s")])
    def identity_bytes(self, s: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"s": tf.identity(s)}


def export(version_dir: Path) -> None:
    """Write the SavedModel to ``version_dir`` (``<base_path>/<version>``)."""
    module = Bench()
    tf.saved_model.save(
        module,
        str(version_dir),
        signatures={"serving_default": module.identity, "bytes": module.identity_bytes},
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: export_bench_model.py <base_path>/<version>, e.g. models/bench/1")
    export(Path(sys.argv[1]))
    print(f"exported to {sys.argv[1]}")
