"""gunicorn's settings (`gunicorn -c config/gunicorn_conf.py`), read from the environment.

gunicorn logs through the application's logging config, so its own lines ("Booting worker") are
JSON in production like everything else. Its access log stays off: `RequestIdMiddleware` logs
each request once, with its request id. With PROMETHEUS_MULTIPROC_DIR set, a worker that exits
has its live gauges dropped from the shared metric files.
"""

from __future__ import annotations

import os
from typing import Any

from config.logging import build_logging_config, default_log_format


def _debug() -> bool:
    return os.environ.get("DEBUG", "").strip().lower() in {"true", "on", "ok", "y", "yes", "1"}


def _setting(name: str, default: str) -> str:
    # An empty value (a blank line in .env) means the default, as in settings.py.
    return os.environ.get(name) or default


bind = f"0.0.0.0:{_setting('PORT', '8000')}"
workers = int(_setting("WEB_WORKERS", "2"))
# Requests only read the database (a run started over HTTP works in a process of its own).
timeout = int(_setting("WEB_TIMEOUT", "30"))
# Let a proxy in front pass the client's scheme and address.
forwarded_allow_ips = _setting("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
logconfig_dict = build_logging_config(
    level=_setting("LOG_LEVEL", "INFO"),
    log_format=_setting("LOG_FORMAT", default_log_format(debug=_debug())),
)


def child_exit(server: Any, worker: Any) -> None:
    from runs.metrics import mark_process_dead

    mark_process_dead(worker.pid)
