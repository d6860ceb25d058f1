"""Run a test suite as a user's would: files in a fresh directory, pytest in a subprocess.

The directory has no conftest and no pytest configuration; the fixtures come
from the installed package's ``pytest11`` entry point alone. Outcomes are read
from pytest's JUnit XML report, keyed ``module.Class.test[id]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tests.support.reference import models_dir

USER_SUITE = Path(__file__).resolve().parents[1] / "plugin" / "user_suite"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# What teardown must not leave: warnings of unclosed resources or tasks that never finished.
LEAK_SIGNS = ("Task was destroyed", "was never awaited", "ResourceWarning", "Unclosed", "unclosed")


@dataclass
class Run:
    """One pytest run: its exit status, output and the outcome of every test."""

    returncode: int
    output: str
    outcomes: dict[str, str]
    messages: dict[str, str]


def run_suite(directory: Path, files: list[Path], *args: str, timeout: float = 300.0) -> Run:
    """Copy ``files`` into ``directory`` and run pytest there with ``args``."""
    for source in files:
        shutil.copy(source, directory / source.name)
    report = directory / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["TFS_HALF_PLUS_TWO_SAVED_MODEL"] = str(models_dir() / "saved_model_half_plus_two_cpu")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "timeout=120",
            "-W",
            "always::ResourceWarning",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            f"--junitxml={report}",
            "-rA",
            *args,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            key = f"{case.get('classname')}.{case.get('name')}"
            outcome, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
                    message = f"{child.get('message', '')}\n{child.text or ''}"
            outcomes[key] = outcome
            messages[key] = message
    return Run(done.returncode, done.stdout + done.stderr, outcomes, messages)


def suite_files(*names: str) -> list[Path]:
    """Files of ``user_suite/`` by name."""
    return [USER_SUITE / name for name in names]
