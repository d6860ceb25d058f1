"""Write the project's TF1 test SavedModel: tests/data/tf1_half_plus_three/00000123.

Run with a Python that has TensorFlow (any 2.x; the committed copy was made with 2.21):

    python tests/data/make_tf1_models.py [--output-dir tests/data]

The model behaves like TF Serving's ``saved_model_half_plus_three`` test model,
y = 0.5 * x + 3, and is built the way TF1 exports were: graph mode, a
``tf.compat.v1.saved_model.Builder``, an asset file and a ``main_op``. The shift
(3) is not in the checkpoint: it lives in the asset ``assets/shift.txt`` and the
``main_op`` reads it into a local variable, so the model answers only when a
loader binds the asset and runs the init op, as TF Serving's ``LoadSavedModel``
does. Its signatures are those of half_plus_three:

* ``serving_default`` (predict): ``x`` (float) -> ``y`` (float). The
  SignatureDef declares both as ``[-1, 1]`` while the graph tensors are scalars:
  TF Serving feeds tensors by name without checking static shapes and serves
  ``[1.0, 2.0, 5.0]`` -> ``[3.5, 4.0, 5.5]``; TF2's ``tf.saved_model.load``
  refuses to wrap such a signature.
* ``tensorflow/serving/regress`` (regress): ``inputs`` -> ``outputs``, the
  input being the batch of serialized ``tf.Example`` (feature ``x``); its
  TensorInfo declares ``DT_FLOAT`` over the string placeholder, as
  half_plus_three's does.

The output directory is replaced; the files are small enough to commit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import tensorflow as tf

v1 = tf.compat.v1

NAME = "tf1_half_plus_three"
VERSION = 123
SLOPE = 0.5
SHIFT = 3.0
ASSET = "shift.txt"


def _declared(tensor: tf.Tensor, shape: list[int | None], dtype: tf.DType | None = None) -> Any:
    """The tensor's TensorInfo, declaring ``shape`` (and ``dtype``) instead of the graph's."""
    info = v1.saved_model.utils.build_tensor_info(tensor)
    info.tensor_shape.CopyFrom(tf.TensorShape(shape).as_proto())
    if dtype is not None:
        info.dtype = dtype.as_datatype_enum
    return info


def build_half_plus_three(export_dir: Path, asset_dir: Path) -> None:
    """Export the model to ``export_dir``; the asset's source file is written to ``asset_dir``."""
    (asset_dir / ASSET).write_text(f"{SHIFT}\n")
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        a = v1.Variable(SLOPE, name="a")
        # Relative to asset_dir (the working directory while the builder copies the asset),
        # so no temporary path is baked into the graph; loaders feed the exported file's path.
        asset_path = tf.constant(ASSET, name="shift_filename")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset_path)
        shift_text = tf.strings.strip(tf.io.read_file(asset_path))
        b = v1.Variable(
            tf.strings.to_number(shift_text, out_type=tf.float32),
            name="b",
            trainable=False,
            collections=[v1.GraphKeys.LOCAL_VARIABLES],
        )

        x = v1.placeholder(tf.float32, shape=[], name="x")
        y = tf.add(tf.multiply(a, x), b, name="y")

        serialized = v1.placeholder(tf.string, shape=[None], name="tf_example")
        features = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([1], tf.float32)})
        regressed = tf.add(tf.multiply(a, features["x"]), b, name="regressed_y")

        signatures = {
            "serving_default": v1.saved_model.signature_def_utils.build_signature_def(
                inputs={"x": _declared(x, [None, 1])},
                outputs={"y": _declared(y, [None, 1])},
                method_name=v1.saved_model.signature_constants.PREDICT_METHOD_NAME,
            ),
            "tensorflow/serving/regress": (
                v1.saved_model.signature_def_utils.build_signature_def(
                    inputs={"inputs": _declared(serialized, [None], tf.float32)},
                    outputs={"outputs": v1.saved_model.utils.build_tensor_info(regressed)},
                    method_name=v1.saved_model.signature_constants.REGRESS_METHOD_NAME,
                )
            ),
        }

        main_op = v1.saved_model.main_op.main_op()  # initializes b from the asset
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(export_dir))
        cwd = os.getcwd()
        os.chdir(asset_dir)
        try:
            builder.add_meta_graph_and_variables(
                session,
                [v1.saved_model.tag_constants.SERVING],
                signature_def_map=signatures,
                assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
                main_op=main_op,
            )
        finally:
            os.chdir(cwd)
        builder.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="where the model's base path <output-dir>/tf1_half_plus_three is (re)written",
    )
    args = parser.parse_args()
    export_dir = args.output_dir.resolve() / NAME / f"{VERSION:08d}"
    if export_dir.exists():
        shutil.rmtree(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as asset_dir:
        build_half_plus_three(export_dir, Path(asset_dir))
    print(f"wrote {export_dir}")


if __name__ == "__main__":
    main()
