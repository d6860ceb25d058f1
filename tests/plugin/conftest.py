"""The user suite under ``user_suite/`` runs only in subprocesses (see ``tests.support.plugin``)."""

collect_ignore: list[str] = ["user_suite"]
