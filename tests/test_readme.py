"""The README's quickstart runs as written and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.read_text().split("```")[1]
    assert "make bench" in first_block
    assert "make test" in first_block


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    quickstart = next(b for b in blocks if "asyncio.run(main())" in b)
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines
        == [
            "[2.5 3.  4.5]",
            "NOT_FOUND Servable not found for request: Latest(no_such_model)",
        ]
        * 2
    )
