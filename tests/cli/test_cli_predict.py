"""``tfs-async predict`` input and output forms, run in-process (``main(argv)``) against
``tfs-async serve`` in a subprocess, over both transports."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tfs_async.cli import main
from tfs_async.commands.common import EXIT_CALL_FAILED, EXIT_USAGE


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _outputs(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code, out, err = _run(capsys, *args, "--format", "json")
    assert code == 0, err
    outputs: dict[str, object] = json.loads(out)["outputs"]
    return outputs


def test_tf_servings_half_plus_two_takes_a_flat_list(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The signature says [-1, 1]; TF Serving accepts [3] all the same: shapes are the server's.
    got = _outputs(capsys, "predict", target, "half_plus_two", "--input_exprs", "x=[1, 2, 5]")
    assert got == {"y": [2.5, 3.0, 4.5]}


def test_npy_and_npz_files(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.array([[1.0, 2.0]], np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "many.npz", a=x * 10, b=x)
    np.savez(tmp_path / "one.npz", only=x * 2)
    assert _outputs(capsys, "predict", target, "scale", "--inputs", f"x={tmp_path}/x.npy") == {
        "n": [[1.0]],
        "y": [[3.0, 5.0]],
    }
    got = _outputs(capsys, "predict", target, "scale", "--inputs", f"x={tmp_path}/many.npz[a]")
    assert got["y"] == [[21.0, 41.0]]
    got = _outputs(capsys, "predict", target, "scale", "--inputs", f"x={tmp_path}/one.npz")
    assert got["y"] == [[5.0, 9.0]]

    code, _, err = _run(capsys, "predict", target, "scale", "--inputs", f"x={tmp_path}/many.npz")
    assert code == EXIT_USAGE
    assert "['a', 'b']" in err
    code, _, err = _run(capsys, "predict", target, "scale", "--inputs", f"x={tmp_path}/none.npy")
    assert code == EXIT_USAGE
    assert "no such file" in err


def test_pickled_arrays_are_refused(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = _run(capsys, "predict", target, "scale", "--inputs", f"x={tmp_path}/obj.npy")
    assert code == EXIT_USAGE
    assert "not a .npy/.npz file of plain arrays" in err


def test_rest_bodies_over_both_transports(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = {
        "rows": {"instances": [[1, 2], [3, 4]]},
        "named_rows": {"instances": [{"x": [1, 2]}, {"x": [3, 4]}]},
        "columns": {"inputs": {"x": [[1, 2], [3, 4]]}},
        "one_column": {"inputs": [[1.0, 2.0], [3.0, 4.0]], "signature_name": "serving_default"},
    }
    for name, body in bodies.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(body))
        got = _outputs(capsys, "predict", target, "scale", "--json", str(path))
        assert got["y"] == [[3.0, 5.0], [7.0, 9.0]], name


def test_strings_b64_and_int32(
    target: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = b"\xff\x00"
    body = {
        "instances": [{"s": "a", "k": 1}, {"s": {"b64": base64.b64encode(raw).decode()}, "k": 2}]
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(body)))
    got = _outputs(capsys, "predict", target, "tagger", "--json", "-")
    assert got["k"] == [3, 6]
    assert got["out"] == ["<a>", {"b64": base64.b64encode(b"<" + raw + b">").decode()}]

    literal = _outputs(capsys, "predict", target, "tagger", "--input_exprs", "s=['x', b'y'];k=[7]")
    assert literal == {"k": [21], "out": ["<x>", "<y>"]}


def test_wrong_dtype_and_overflow_are_named(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "predict", target, "scale", "--input_exprs", "x=[['a', 'b']]")
    assert code == EXIT_CALL_FAILED
    assert err.startswith("tfs-async: error: INVALID_ARGUMENT [model 'scale'")
    assert "'x'" in err
    assert "DT_FLOAT" in err
    code, _, err = _run(
        capsys, "predict", target, "tagger", "--input_exprs", "s=['a'];k=[1099511627776]"
    )
    assert code == EXIT_CALL_FAILED
    assert "'k'" in err
    assert "DT_INT32" in err
    code, _, err = _run(capsys, "predict", target, "scale", "--input_exprs", "x=[[1, 'a']]")
    assert code == EXIT_USAGE
    assert "'x'" in err
    code, _, err = _run(capsys, "predict", target, "scale", "--input_exprs", "x=[[1.5, 2.0]", "-v")
    assert code == EXIT_USAGE
    assert "is not a Python literal" in err


def test_output_filter_and_outdir(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got = _outputs(
        capsys, "predict", target, "scale", "--input_exprs", "x=[[1, 2]]", "--output_filter", "y"
    )
    assert got == {"y": [[3.0, 5.0]]}

    outdir = tmp_path / "out"
    args = ["predict", target, "scale", "--input_exprs", "x=[[1, 2]]", "--outdir", str(outdir)]
    code, _, err = _run(capsys, *args)
    assert code == 0, err
    assert sorted(p.name for p in outdir.iterdir()) == ["n.npy", "y.npy"]
    y = np.load(outdir / "y.npy")
    assert y.dtype == np.float32
    assert y.tolist() == [[3.0, 5.0]]

    code, _, err = _run(capsys, *args)
    assert code == EXIT_USAGE
    assert "--overwrite" in err
    code, _, err = _run(capsys, *args, "--overwrite")
    assert code == 0, err


def test_examples_fed_to_a_string_input(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    # saved_model_cli's --input_examples: serialized tf.Examples for the named input.
    got = _outputs(
        capsys,
        "predict",
        target,
        "scorer",
        "--input_examples",
        'inputs=[{"f": [0.25]}, {"f": [1.0]}]',
    )
    assert got["scores"] == [[0.75, 0.25], [0.0, 1.0]]
    assert got["classes"] == [["low", "high"], ["low", "high"]]


def test_usage_errors(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        ("predict", target, "scale"): "no inputs",
        ("predict", target, "scale", "--json", str(tmp_path / "none.json")): "none.json",
        ("predict", target, "scale", "--header", "novalue", "--input_exprs", "x=[[1,2]]"): (
            "KEY=VALUE"
        ),
        ("predict", target, "scale", "--input_exprs", "x=[[1,2]]", "--inputs", "x=a.npy"): (
            "no such file"
        ),
        ("classify", target, "scorer"): "one --input_examples",
        ("metadata", target, "scale", "--cert", str(tmp_path / "c.pem")): "TLS file not found",
    }
    for args, expected in cases.items():
        code, out, err = _run(capsys, *args)
        assert code == EXIT_USAGE, (args, err)
        assert out == ""
        assert expected in err, (args, err)
        assert err.count("\n") == 1, err
