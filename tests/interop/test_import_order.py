"""tfs_async and Google's packages share one process, whichever is imported first.

Each order runs in a fresh interpreter: protobuf's default descriptor pool is
per process, and a collision only shows on the first import of the second side.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow  # noqa: F401  (the tier fails, never skips, without it)
import tensorflow_serving.apis.predict_pb2  # noqa: F401

pytestmark = pytest.mark.interop

IMPORT_OURS = "import tfs_async, tfs_async._proto.predict_pb2 as our_predict"
IMPORT_GOOGLE = textwrap.dedent(
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2 as google_predict
    from tensorflow_serving.apis import get_model_metadata_pb2 as google_metadata
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    from tensorflow_serving.apis import model_service_pb2_grpc
    """
)
# Messages built on each side parse on the other, and TF's own tensor helpers work.
USE_BOTH = textwrap.dedent(
    """
    import numpy as np
    from tfs_async._proto import get_model_metadata_pb2 as our_metadata

    theirs = google_predict.PredictRequest()
    theirs.model_spec.name = "m"
    theirs.inputs["x"].CopyFrom(tf.make_tensor_proto(np.arange(6, dtype=np.float32).reshape(2, 3)))
    ours = our_predict.PredictRequest.FromString(theirs.SerializeToString())
    assert ours.model_spec.name == "m"
    assert [d.size for d in ours.inputs["x"].tensor_shape.dim] == [2, 3]
    back = google_predict.PredictRequest.FromString(ours.SerializeToString())
    assert back == theirs
    np.testing.assert_array_equal(tf.make_ndarray(back.inputs["x"]), np.arange(6).reshape(2, 3))
    assert our_metadata.SignatureDefMap.DESCRIPTOR.full_name == (
        "tfs_async.tensorflow.serving.SignatureDefMap"
    )
    assert google_metadata.SignatureDefMap.DESCRIPTOR.full_name == (
        "tensorflow.serving.SignatureDefMap"
    )
    assert tf.constant([1.0]).numpy().tolist() == [1.0]
    print("OK")
    """
)


@pytest.mark.parametrize(
    "first_second",
    [(IMPORT_OURS, IMPORT_GOOGLE), (IMPORT_GOOGLE, IMPORT_OURS)],
    ids=["tfs_async-first", "tensorflow-first"],
)
def test_both_import_orders_work_in_one_process(first_second: tuple[str, str]) -> None:
    first, second = first_second
    script = "\n".join([first, second, USE_BOTH])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == "OK"
