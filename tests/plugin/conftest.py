"""The user suite under ``user_suite/`` runs only in subprocesses (see ``plugin_harness``)."""

collect_ignore: list[str] = ["user_suite"]
