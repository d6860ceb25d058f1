"""TF Serving's own suite is an opt-in tier (``make test-tfserving-suite``), not part of pytest.

Only the runner's own checks (``test_run.py``) are collected here.
"""

collect_ignore_glob = ["run.py"]
