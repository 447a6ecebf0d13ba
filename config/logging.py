"""Log lines for people in development and for machines in production.

Two formats share one set of fields: `timestamp`, `level`, `logger` and `message` on every line,
plus the context bound where the work happens (`request_id`, `run_id`, `source`; see
`common.logs`).

- `plain`: one readable line, the context in brackets at the end (development default).
- `json`: one JSON object per line (production default), for a log shipper to parse.

Both formatters redact secrets on the way out (`common.logs.Redactor`).

This module must not import Django: gunicorn's master process uses `build_logging_config`
before any Django setting exists (`config/gunicorn_conf.py`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from common.logs import CONTEXT_FIELDS, LogContextFilter, Redactor

LOG_FORMATS = ("plain", "json")


def _iso_utc(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


# --- formatters --------------------------------------------------------------------------------


class PlainFormatter(logging.Formatter):
    """`2025-01-01T10:00:00.123Z INFO ingestion.pipeline message [run_id=7 source=csv]`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        super().__init__(*args, **kwargs)
        self._redactor = Redactor()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso_utc(record.created)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = " ".join(
            f"{key}={getattr(record, key)}"
            for key in CONTEXT_FIELDS
            if getattr(record, key, None) is not None
        )
        return f"{line} [{context}]" if context else line

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.redact(super().format(record))


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, then the bound context and
    any `extra=` fields, then `exc_info` for an exception."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(message)s")
        super().__init__(*args, **kwargs)
        self._redactor = Redactor()

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        # The four fields every line carries, first, whatever else the record holds.
        log_data["timestamp"] = _iso_utc(record.created)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: self._redactor.redact_value(key, value) for key, value in log_data.items()}


# --- configuration -----------------------------------------------------------------------------


def default_log_format(*, debug: bool) -> str:
    """JSON in production, readable lines in development."""
    return "plain" if debug else "json"


def build_logging_config(*, level: str = "INFO", log_format: str = "plain") -> dict[str, Any]:
    """The `logging.config.dictConfig` dict for Django (settings.LOGGING) and gunicorn."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": LogContextFilter}},
        "formatters": {
            "plain": {"()": PlainFormatter},
            "json": {"()": JsonLineFormatter},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            },
        },
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {
            # Django's default config gives "django" handlers of its own (a console that prints
            # in DEBUG, mail to ADMINS); naming it here replaces them, so its lines reach the
            # root handler once, in this format.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            # One line per SQL statement is too much even in development.
            "django.db.backends": {"level": "WARNING"},
            # "no .env file" at every process start: containers get their settings otherwise.
            "environ": {"level": "WARNING"},
            # gunicorn's own lines ("Booting worker") in the same format as the application's.
            "gunicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            # Requests are logged once, by common.middleware.RequestIdMiddleware, with their id.
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            # The same for the development server's access lines (`make run`).
            "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }
