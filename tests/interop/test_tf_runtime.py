"""tf_runtime: TF Serving's test SavedModels executed by TensorFlow, numpy in and out."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfs_async.errors import StatusCode
from tfs_async.testing.status import ServingStatus
from tfs_async.testing.tf_runtime import SignatureFunction, load_signature_functions

pytestmark = pytest.mark.interop

TF1 = "saved_model_half_plus_two_cpu/00000123"
TF2 = "saved_model_half_plus_two_tf2_cpu/00000123"

_CACHE: dict[Path, Mapping[str, SignatureFunction]] = {}


def _functions(models_dir: Path, which: str) -> Mapping[str, SignatureFunction]:
    """Each model is loaded once per session: loading TensorFlow graphs is the slow part."""
    path = models_dir / which
    if path not in _CACHE:
        _CACHE[path] = load_signature_functions(path)
    return _CACHE[path]


def _examples(xs: list[float]) -> npt.NDArray[np.object_]:
    batch = [
        tf.train.Example(
            features=tf.train.Features(
                feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))}
            )
        ).SerializeToString()
        for x in xs
    ]
    return np.array(batch, dtype=object)


@pytest.mark.parametrize("which", [TF1, TF2], ids=["tf1", "tf2"])
def test_half_plus_two_answers_like_tf_serving(models_dir: Path, which: str) -> None:
    functions = _functions(models_dir, which)
    out = functions["serving_default"]({"x": np.array([1.0, 2.0, 5.0], np.float32)})
    assert list(out) == ["y"]
    assert out["y"].dtype == np.float32
    np.testing.assert_array_equal(out["y"], [2.5, 3.0, 4.5])


@pytest.mark.parametrize("which", [TF1, TF2], ids=["tf1", "tf2"])
def test_example_signatures_take_serialized_examples(models_dir: Path, which: str) -> None:
    functions = _functions(models_dir, which)
    batch = {"inputs": _examples([1.0, 3.0])}
    np.testing.assert_array_equal(functions["classify_x_to_y"](batch)["scores"], [[2.5], [3.5]])
    np.testing.assert_array_equal(functions["regress_x_to_y"](batch)["outputs"], [[2.5], [3.5]])
    np.testing.assert_array_equal(functions["regress_x_to_y2"](batch)["outputs"], [[3.5], [4.5]])


def test_tf1_signature_keys(models_dir: Path) -> None:
    assert sorted(_functions(models_dir, TF1)) == [
        "classify_x_to_y",
        "regress_x2_to_y3",
        "regress_x_to_y",
        "regress_x_to_y2",
        "serving_default",
    ]


@settings(max_examples=25, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=5),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_serving_default_is_half_plus_two_for_any_batch(
    models_dir: Path, x: npt.NDArray[np.float32]
) -> None:
    functions = _functions(models_dir, TF1)
    got = functions["serving_default"]({"x": x})["y"]
    np.testing.assert_array_equal(got, np.float32(0.5) * x + np.float32(2.0))


def test_wrong_dtype_is_invalid_argument_naming_input(models_dir: Path) -> None:
    functions = _functions(models_dir, TF1)
    with pytest.raises(ServingStatus) as caught:
        functions["serving_default"]({"x": np.array([1.0], np.float64)})
    assert caught.value.code == StatusCode.INVALID_ARGUMENT
    assert "'x'" in caught.value.message
    assert "float32" in caught.value.message
    assert "float64" in caught.value.message


def test_wrong_aliases_are_invalid_argument(models_dir: Path) -> None:
    functions = _functions(models_dir, TF1)
    with pytest.raises(ServingStatus) as caught:
        functions["serving_default"]({"nope": np.array([1.0], np.float32)})
    assert caught.value.code == StatusCode.INVALID_ARGUMENT
    assert "['x']" in caught.value.message


def test_a_bad_example_is_tensorflows_invalid_argument(models_dir: Path) -> None:
    functions = _functions(models_dir, TF1)
    with pytest.raises(ServingStatus) as caught:
        functions["regress_x_to_y"]({"inputs": np.array([b"not an example"], dtype=object)})
    assert caught.value.code == StatusCode.INVALID_ARGUMENT


def test_missing_saved_model_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"saved_model\.pb"):
        load_signature_functions(tmp_path)


def test_unknown_tags_are_not_found_in_tf_servings_words(models_dir: Path) -> None:
    with pytest.raises(ServingStatus) as caught:
        load_signature_functions(models_dir / TF1, tags=("serve", "gpu"))
    assert caught.value.code == StatusCode.NOT_FOUND
    assert caught.value.message.startswith(
        "Could not find meta graph def matching supplied tags: { gpu,serve }."
    )


def test_without_tensorflow_the_error_names_the_extra(models_dir: Path) -> None:
    # sys.modules[name] = None makes `import name` raise ImportError, as if not installed.
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["tensorflow"] = None
        from tfs_async.testing.tf_runtime import load_signature_functions
        try:
            load_signature_functions({str(models_dir / TF1)!r})
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("no ImportError")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tfs-async[tensorflow]" in done.stdout
