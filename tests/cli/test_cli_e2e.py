"""Each client subcommand end to end: ``tfs-async`` in a subprocess against ``tfs-async serve``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import ServeProcess, child_env, one_line_error, run_cli, start_serve
from tfs_async.commands.common import EXIT_NOT_READY, EXIT_PARTIAL, EXIT_USAGE


def test_metadata_table_and_json(target: str) -> None:
    table = run_cli("metadata", target, "scale")
    assert table.code == 0, table.err
    lines = [" ".join(line.split()) for line in table.out.splitlines()]
    assert "signature 'serving_default' method tensorflow/serving/predict" in lines
    assert "input x DT_FLOAT (-1, 2) -" in lines
    assert "output y DT_FLOAT (-1, 2) -" in lines

    as_json = run_cli("metadata", target, "scale", "--json")
    assert as_json.code == 0, as_json.err
    doc = json.loads(as_json.out)
    assert doc["model_spec"] == {"name": "scale", "version": 3}
    sig = doc["signature_def"]["serving_default"]
    assert sig["inputs"]["x"] == {"dtype": "DT_FLOAT", "shape": [-1, 2], "name": ""}
    assert sorted(sig["outputs"]) == ["n", "y"]


def test_status_and_wait(target: str) -> None:
    shown = run_cli("status", target, "scale")
    assert shown.code == 0, shown.err
    assert ["3", "AVAILABLE"] in [line.split() for line in shown.out.splitlines()]

    ready = run_cli("status", target, "scale", "--wait", "--timeout", "20")
    assert ready.code == 0, ready.err

    # A readiness probe for a version that never comes: non-zero, with the reason.
    never = run_cli("status", target, "scale", "--version", "9", "--wait", "--timeout", "1")
    assert never.code == EXIT_NOT_READY
    line = one_line_error(never)
    assert "not available within 1.0 s" in line
    assert "version 9" in line


def test_predict_literal_typed_from_the_signature(target: str) -> None:
    # Python ints and floats on a float32 model: typed from the metadata, over both transports.
    done = run_cli("predict", target, "scale", "--input_exprs", "x=[[1.0, 2], [3, 4.5]]", "--json")
    assert done.code == 0, done.err
    doc = json.loads(done.out)
    assert doc["outputs"]["y"] == [[3.0, 5.0], [7.0, 10.0]]
    assert doc["model_spec"]["name"] == "scale"

    table = run_cli("predict", target, "scale", "--input_exprs", "x=[[1.0, 2.0]]")
    assert table.code == 0, table.err
    rows = [line.split() for line in table.out.splitlines()]
    assert ["y", "float32", "(1,", "2)", "[[3.,", "5.]]"] in rows


def test_predict_jsonl_in_order_with_failed_lines(target: str, tmp_path: Path) -> None:
    lines = [json.dumps({"x": [i, i + 0.5]}) for i in range(40)]
    lines[7] = "{not json"
    lines[21] = json.dumps({"x": ["a", "b"]})
    lines[30] = json.dumps({"z": [1.0, 2.0]})
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    done = run_cli("predict", target, "scale", "--jsonl", str(source), "--out", str(out))
    assert done.code == EXIT_PARTIAL, done.err
    assert "40 rows, 37 ok, 3 failed" in done.err
    assert "3 lines failed" in done.err
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(answers) == 40
    for i, answer in enumerate(answers):
        if i in (7, 21, 30):
            assert answer["line"] == i + 1
            assert answer["code"] == "INVALID_ARGUMENT"
            continue
        assert answer["y"] == [2 * i + 1, 2 * i + 2], i
    assert "not JSON" in answers[7]["error"]
    assert "'x'" in answers[21]["error"]
    assert "DT_FLOAT" in answers[21]["error"]
    assert "missing ['x']" in answers[30]["error"]


def test_classify_and_regress(target: str) -> None:
    classify = run_cli(
        "classify", target, "scorer", "--input_examples", '[{"f": [0.25]}, {"f": 0.5}]', "--json"
    )
    assert classify.code == 0, classify.err
    results = json.loads(classify.out)["results"]
    assert results == [[["low", 0.75], ["high", 0.25]], [["low", 0.5], ["high", 0.5]]]

    regress = run_cli(
        "regress",
        target,
        "scorer",
        "--signature",
        "regress",
        "--input_examples",
        'inputs=[{"f": [0.25]}]',
    )
    assert regress.code == 0, regress.err
    assert ["0", "2.5"] in [line.split() for line in regress.out.splitlines()]


def test_reload_config_over_grpc_and_refused_over_rest(models_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    base = models_dir / "saved_model_half_plus_two_cpu"
    config.write_text(
        f'model_config_list {{ config {{ name: "hpt" base_path: "{base}" '
        'model_platform: "tensorflow" } }'
    )
    server = start_serve("--python_models=tests.support.cli_models:build")
    try:
        done = run_cli("reload-config", server.grpc, str(config))
        assert done.code == 0, done.err
        ready = run_cli("status", server.grpc, "hpt", "--wait", "--timeout", "30", "--json")
        assert ready.code == 0, ready.err
        assert json.loads(ready.out)["model_version_status"][0]["version"] == 123

        rest = run_cli("reload-config", server.http, str(config))
        assert rest.code == 1
        assert "UNIMPLEMENTED" in one_line_error(rest)

        bad = run_cli("reload-config", server.grpc, str(tmp_path / "missing.config"))
        assert bad.code == EXIT_USAGE
        assert "missing.config" in one_line_error(bad)
    finally:
        assert server.stop() == 0


def test_target_from_the_environment(serve: ServeProcess) -> None:
    done = run_cli("status", "scale", env=child_env(TFS_ASYNC_TARGET=serve.http))
    assert done.code == 0, done.err
    assert "AVAILABLE" in done.out

    missing = run_cli("status", "scale")
    assert missing.code == EXIT_USAGE
    assert "TFS_ASYNC_TARGET" in one_line_error(missing)


def test_one_line_errors_and_verbose(target: str) -> None:
    unknown = run_cli("predict", target, "nope", "--input_exprs", "x=[[1.0, 2.0]]")
    assert unknown.code == 1
    assert one_line_error(unknown).startswith("tfs-async: error: NOT_FOUND")

    wrong_name = run_cli("predict", target, "scale", "--input_exprs", "z=[[1.0, 2.0]]")
    assert wrong_name.code == 1
    line = one_line_error(wrong_name)
    assert "INVALID_ARGUMENT" in line
    assert "missing ['x']" in line
    assert "'scale'" in line

    bad_target = run_cli("metadata", "localhost:1", "scale")
    assert bad_target.code == EXIT_USAGE
    assert "unsupported target 'localhost:1'" in one_line_error(bad_target)

    verbose = run_cli(
        "metadata", target, "nope", "--verbose", "--header", "authorization=Bearer s3cret"
    )
    assert verbose.code == 1
    assert "Traceback" in verbose.err
    assert "GetModelMetadata" in verbose.err
    assert "NOT_FOUND" in verbose.err
    assert "headers authorization" in verbose.err
    assert "s3cret" not in verbose.err
