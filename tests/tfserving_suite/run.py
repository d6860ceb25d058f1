"""Run TF Serving's own model-server test suite against ``tfs-async serve`` (opt-in tier).

The suite is read, unchanged, from a checkout of TF Serving's source that
``TFSERVING_SRC`` names (``git clone https://github.com/tensorflow/serving``):
``tensorflow_serving/model_servers/tensorflow_model_server_test.py``, its base
module under ``model_servers/test_util/`` and the test data under
``servables/tensorflow/testdata``. None of it is copied into this repository.
The suite finds its binary and test data under ``$TEST_SRCDIR/tf_serving/
tensorflow_serving/`` (Bazel's layout); this script builds that tree in a
temporary directory:

* ``model_servers/tensorflow_model_server``: a shell script that execs
  ``python -m tfs_async.testing "$@"`` (the binary swapped, the tests untouched);
* ``servables/tensorflow/testdata``: the checkout's test data;
* ``tensorflow_serving.model_servers.test_util.tensorflow_model_server_test_base``:
  the checkout's base module, made importable beside the installed
  ``tensorflow_serving.apis`` package.

It needs tensorflow, tensorflow-serving-api, portpicker and tf-keras (``make
test-tfserving-suite`` installs and runs it). The suite's Keras tests were written
for Keras 2 (``tf.keras`` before TensorFlow 2.16): they name a Sequential model's
input ``x`` and expect the SavedModel's signature to say ``x`` and ``y``, which
Keras 3 does not do (it says ``inputs`` and ``output_0``, against any server).
The tier therefore runs the suite with ``TF_USE_LEGACY_KERAS=1``, TensorFlow's
own switch that makes ``tf.keras`` the tf-keras package (Keras 2). Arguments
after the script name go to the test runner (absltest), e.g.
``TensorflowModelServerTest.testPredictREST``.
"""

from __future__ import annotations

import os
import runpy
import shutil
import stat
import sys
import tempfile
from pathlib import Path

TEST = "tensorflow_model_server_test.py"


def upstream() -> Path:
    """``tensorflow_serving/`` of the checkout ``TFSERVING_SRC`` names."""
    source = os.environ.get("TFSERVING_SRC")
    package = Path(source) / "tensorflow_serving" if source else None
    if package is None or not (package / "model_servers" / TEST).is_file():
        raise SystemExit(
            "TFSERVING_SRC must name a checkout of TF Serving's source "
            f"(with tensorflow_serving/model_servers/{TEST}); got {source!r}"
        )
    return package


def build_tree(root: Path, source: Path) -> Path:
    """Lay out ``root`` as Bazel's runfiles for the suite; returns the TEST_SRCDIR."""
    package = root / "tf_serving" / "tensorflow_serving"
    servers = package / "model_servers"
    servers.mkdir(parents=True)
    binary = servers / "tensorflow_model_server"
    binary.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tfs_async.testing "$@"\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    servables = package / "servables" / "tensorflow"
    servables.mkdir(parents=True)
    (servables / "testdata").symlink_to(source / "servables" / "tensorflow" / "testdata")
    # tensorflow_serving.model_servers.test_util.tensorflow_model_server_test_base
    test_util = root / "py" / "tensorflow_serving" / "model_servers" / "test_util"
    test_util.mkdir(parents=True)
    for folder in (test_util.parent, test_util):
        (folder / "__init__.py").write_text("")
    base = "tensorflow_model_server_test_base.py"
    shutil.copy(source / "model_servers" / "test_util" / base, test_util)
    return root


def main(argv: list[str]) -> int:
    """Build the tree, then run the upstream test module as ``__main__``."""
    # Before anything imports tensorflow: tf.keras is Keras 2, as the suite expects.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow_serving

    source = upstream()
    with tempfile.TemporaryDirectory(prefix="tfserving-suite-") as tmp:
        root = build_tree(Path(tmp), source)
        os.environ["TEST_SRCDIR"] = str(root)
        # The pip package ships tensorflow_serving.apis only; add model_servers beside it.
        tensorflow_serving.__path__.append(str(root / "py" / "tensorflow_serving"))
        sys.argv = [str(source / "model_servers" / TEST), *argv]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as done:
            return done.code if isinstance(done.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
