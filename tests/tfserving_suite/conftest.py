"""TF Serving's own suite is an opt-in tier (``make test-tfserving-suite``), not part of pytest."""

collect_ignore_glob = ["run.py"]
