"""The suite runner's swap: TF Serving's tests find ``tfs-async serve`` where Bazel puts the binary.

These run in every tier (no TensorFlow, no checkout of TF Serving): a fake
checkout stands in for the real one, and the shim is executed for real.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.tfserving_suite import run

TIMEOUT = 60.0  # the shim starts a Python that imports the emulator's CLI


def _fake_checkout(root: Path) -> Path:
    package = root / "tensorflow_serving"
    servers = package / "model_servers"
    (servers / "test_util").mkdir(parents=True)
    (servers / run.TEST).write_text("# the suite\n")
    (servers / "test_util" / "tensorflow_model_server_test_base.py").write_text("BASE = 1\n")
    (package / "servables" / "tensorflow" / "testdata" / "half_plus_two").mkdir(parents=True)
    return root


def test_the_binary_the_suite_starts_is_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFSERVING_SRC", str(_fake_checkout(tmp_path / "serving")))
    root = run.build_tree(tmp_path / "runfiles", run.upstream())
    package = root / "tf_serving" / "tensorflow_serving"
    # Where tensorflow_model_server_test_base.RunServer looks for it ($TEST_SRCDIR/...).
    binary = package / "model_servers" / "tensorflow_model_server"
    answer = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("TensorFlow ModelServer: tfs-async-emulator-")
    # The test data and the base module come from the checkout, unchanged.
    assert (package / "servables" / "tensorflow" / "testdata" / "half_plus_two").is_dir()
    base = root / "py" / "tensorflow_serving" / "model_servers" / "test_util"
    assert (base / "tensorflow_model_server_test_base.py").read_text() == "BASE = 1\n"


def test_a_folder_without_the_suite_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFSERVING_SRC", str(tmp_path))
    with pytest.raises(SystemExit, match="TFSERVING_SRC must name a checkout of TF Serving"):
        run.upstream()
