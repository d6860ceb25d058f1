"""The pytest plugin, used as a user would: installed, no conftest, pytest in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.plugin import EXAMPLES, LEAK_SIGNS, Run, run_suite, suite_files

# A suite that exercises every fixture; copied as-is into a fresh directory for each run.
USER_FILES = suite_files(
    "leaks.py",
    "user_models.py",
    "test_defaults.py",
    "test_override_models.py",
    "test_override_config.py",
    "test_bad_override.py",
    "test_process.py",
)
BOTH = ("grpc", "http")

EXPECTED = {
    **{f"test_defaults.test_default_model_is_half_plus_two[{p}]": "passed" for p in BOTH},
    **{f"test_defaults.test_faults_reach_the_client[{p}]": "passed" for p in BOTH},
    "test_defaults.test_each_test_had_its_own_server": "passed",
    "test_defaults.test_teardown_left_nothing_behind": "passed",
    **{f"test_override_models.test_serves_the_override_only[{p}]": "passed" for p in BOTH},
    **{
        f"test_override_config.test_each_form_serves_its_model[{p}-{form}]": "passed"
        for form in ("config", "saved_model", "factory")
        for p in BOTH
    },
    "test_bad_override.TestNotModels.test_server": "error",
    **{f"test_bad_override.TestMissingConfigFile.test_client[{p}]": "error" for p in BOTH},
    "test_bad_override.TestPythonModelInAChildProcess.test_process": "error",
    "test_bad_override.TestFactoryThatIsNot.test_server": "error",
    "test_bad_override.TestFactoryThatIsNot.test_process": "error",
    **{f"test_with_tfs_async.test_half_plus_two[{p}]": "passed" for p in BOTH},
    **{f"test_with_tfs_async.test_my_service_retries[{p}]": "passed" for p in BOTH},
    "test_with_tfs_async.TestMyOwnModel.test_scores[grpc]": "passed",
    "test_with_tfs_async.TestMyOwnModel.test_scores[http]": "passed",
}
PROCESS = {
    "test_process.test_kill_and_restart_on_the_same_ports": "passed",
    "test_process.TestFactoryOverride.test_child_serves_the_factory": "passed",
    "test_process.test_teardown_left_nothing_behind": "passed",
}
ONE_LOOP = {
    **{f"test_one_loop.test_predict[{p}-{n}]": "passed" for p in BOTH for n in (1, 2)},
    "test_one_loop.test_teardown_left_no_task": "passed",
}


def check_user_suite(run: Run, expected: dict[str, str]) -> None:
    assert run.outcomes == expected, run.output
    bad = "test_bad_override."
    assert (
        "fixture 'tfs_models' returned 42 (int)" in run.messages[f"{bad}TestNotModels.test_server"]
    )
    for p in BOTH:
        message = run.messages[f"{bad}TestMissingConfigFile.test_client[{p}]"]
        assert "fixture 'tfs_models' returned 'no/such/models.config'" in message
        assert "is not a models.config file" in message
    message = run.messages[f"{bad}TestPythonModelInAChildProcess.test_process"]
    assert "PythonModel('identity'" in message
    assert "cannot hand to a child process" in message
    for test in ("test_server", "test_process"):
        message = run.messages[f"{bad}TestFactoryThatIsNot.{test}"]
        assert "fixture 'tfs_models' returned 'user_models:no_such_function'" in message
        assert "AttributeError" in message
    assert "must not start" not in run.output
    for sign in LEAK_SIGNS:
        assert sign not in run.output, run.output
    assert run.returncode == 1  # the bad overrides, nothing else


def test_user_suite_strict_mode(tmp_path: Path) -> None:
    # Each test and its fixtures in their own event loop; the server process too.
    run = run_suite(
        tmp_path,
        [*USER_FILES, EXAMPLES / "test_with_tfs_async.py"],
        "-o",
        "asyncio_mode=strict",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    check_user_suite(run, {**EXPECTED, **PROCESS})


def test_user_suite_auto_mode_in_one_event_loop(tmp_path: Path) -> None:
    # Every test and fixture in one session-wide loop (function-scoped servers and
    # clients follow the suite's loop default): what teardown leaves there stays
    # visible to the next test, which checks that nothing does.
    run = run_suite(
        tmp_path,
        [*USER_FILES[:-1], suite_files("test_one_loop.py")[0], EXAMPLES / "test_with_tfs_async.py"],
        "-o",
        "asyncio_mode=auto",
        "-o",
        "asyncio_default_fixture_loop_scope=session",
        "-o",
        "asyncio_default_test_loop_scope=session",
    )
    check_user_suite(run, {**EXPECTED, **ONE_LOOP})


def test_one_server_per_session(tmp_path: Path) -> None:
    run = run_suite(
        tmp_path,
        suite_files("test_shared.py"),
        "-o",
        "tfs_server_scope=session",
        "-o",
        "asyncio_default_test_loop_scope=session",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    assert run.outcomes == {
        "test_shared.test_first[grpc]": "passed",
        "test_shared.test_first[http]": "passed",
        "test_shared.test_second[grpc]": "passed",
        "test_shared.test_second[http]": "passed",
        "test_shared.test_one_server_and_one_client_per_protocol": "passed",
        "test_shared.test_in_a_narrower_loop[grpc]": "error",
        "test_shared.test_in_a_narrower_loop[http]": "error",
    }, run.output
    message = run.messages["test_shared.test_in_a_narrower_loop[grpc]"]
    assert "tfs_server_scope = session" in message
    assert "function-scoped event loop" in message
    for sign in LEAK_SIGNS:
        assert sign not in run.output, run.output


def test_without_pytest_asyncio(tmp_path: Path) -> None:
    run = run_suite(tmp_path, suite_files("test_without_asyncio.py"), "-p", "no:asyncio")
    assert run.outcomes == {
        "test_without_asyncio.test_client[grpc]": "error",
        "test_without_asyncio.test_client[http]": "error",
        "test_without_asyncio.test_process": "passed",
        "test_without_asyncio.test_sync_client[grpc]": "passed",
        "test_without_asyncio.test_sync_client[http]": "passed",
    }, run.output
    message = run.messages["test_without_asyncio.test_client[grpc]"]
    assert "fixture 'tfs_client' is async and needs the pytest-asyncio plugin" in message


def test_a_bad_scope_option_is_a_usage_error(tmp_path: Path) -> None:
    run = run_suite(tmp_path, suite_files("test_shared.py"), "-o", "tfs_server_scope=forever")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "tfs_server_scope = 'forever' is not a pytest scope" in run.output


@pytest.mark.parametrize("module", ["tfs_async", "tfs_async.testing"])
def test_importing_the_package_does_not_import_pytest(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "roots = {name.split('.')[0] for name in sys.modules}\n"
        "print(sorted(roots & {'pytest', '_pytest', 'pytest_asyncio'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_readme_shows_the_example_that_runs() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("## Testing your own code", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks == [(EXAMPLES / "test_with_tfs_async.py").read_text()]
