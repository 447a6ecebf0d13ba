"""Log lines for people in development and for machines in production.

Two formats share one set of fields: `timestamp`, `level`, `logger` and `message` on every line,
plus the context bound where the work happens: `request_id` while a request is served (see
`config.middleware`), `run_id` and `source` while an ETL run works (see `ingestion.pipeline`).

- `plain`: one readable line, the context in brackets at the end (development default).
- `json`: one JSON object per line (production default), for a log shipper to parse.

Both formatters redact secrets on the way out: values of secret-looking environment variables
(`SECRET_KEY`, `*_API_KEY`, `POSTGRES_PASSWORD`, the password inside `DATABASE_URL`, ...),
passwords in URLs, secret-looking query parameters and authorization headers. The context
plumbing is plain `contextvars`, so it follows a request or a run through its thread.

This module must not import Django: gunicorn's master process uses `build_logging_config`
before any Django setting exists (`config/gunicorn_conf.py`).
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from pythonjsonlogger.json import JsonFormatter

#: The context keys a line may carry, in the order the plain format prints them.
CONTEXT_FIELDS = ("request_id", "run_id", "source")

LOG_FORMATS = ("plain", "json")

REDACTED = "***"

# Read-only: a bound context is replaced, never changed in place, so a value bound in one block
# cannot leak into another.
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "log_context", default=_EMPTY
)


@contextmanager
def bind_log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line written inside the `with` block (None values are skipped).

    Nested blocks add to the outer context and restore it when they end.
    """
    bound = {**_context.get(), **{key: value for key, value in fields.items() if value is not None}}
    token = _context.set(bound)
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, Any]:
    """The fields bound right now (a copy)."""
    return dict(_context.get())


class LogContextFilter(logging.Filter):
    """Copy the bound context onto each record, so any formatter can use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            # A value passed explicitly with `extra=` wins over the bound one.
            if not hasattr(record, key):
                setattr(record, key, value)
        # Django logs 4xx/5xx responses ("Not Found: /x") after the middleware has returned,
        # outside the bound context; the request it passes along still has its id.
        if not hasattr(record, "request_id"):
            request_id = getattr(getattr(record, "request", None), "request_id", None)
            if request_id is not None:
                record.request_id = request_id
        return True


# --- redaction ---------------------------------------------------------------------------------

# Environment variables whose values are secrets, by name.
_SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL", re.IGNORECASE)
# Shorter values are not worth hiding and would blank out ordinary words everywhere.
_MIN_SECRET_LENGTH = 6
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]+@", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"(?P<head>[?&;][\w.-]*(?:key|token|secret|password|signature)[\w.-]*=)[^&#\s\"'<>]+",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    r"(?P<head>\b(?:authorization|proxy-authorization|x-api-key|api-key|apikey|"
    r"x-cg-(?:pro|demo)-api-key)[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
    r"[^\s\"',;}]+",
    re.IGNORECASE,
)


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    values: set[str] = set()
    for name, value in environ.items():
        if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LENGTH:
            values.add(value)
        if name.endswith("DATABASE_URL") and value:
            password = urlsplit(value).password
            if password and len(unquote(password)) >= _MIN_SECRET_LENGTH:
                values.update({password, unquote(password)})
    # Longest first, so a secret that contains another is replaced whole.
    return sorted(values, key=len, reverse=True)


def redact(text: str, *, secrets: list[str] | None = None) -> str:
    """`text` with known secret values and secret-shaped fragments replaced by `***`."""
    for value in _secret_values(os.environ) if secrets is None else secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", text)
    text = _SECRET_PARAM.sub(rf"\g<head>{REDACTED}", text)
    return _AUTH_HEADER.sub(rf"\g<head>{REDACTED}", text)


class _Redactor:
    """Secret values read once per formatter: the environment does not change under a process
    (Django reads `.env` into it before logging is configured)."""

    _secrets: list[str] | None = None

    def redact(self, text: str) -> str:
        if self._secrets is None:
            self._secrets = _secret_values(os.environ)
        return redact(text, secrets=self._secrets)

    def redact_value(self, key: str, value: Any) -> Any:
        if _SECRET_NAME.search(key) and value not in (None, ""):
            return REDACTED
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {str(k): self.redact_value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(key, v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        # Objects (a Django request, say) become their text, which may hold a URL.
        return self.redact(str(value))


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
        self._redactor = _Redactor()

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
        self._redactor = _Redactor()

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
            # Requests are logged once, by config.middleware.RequestIdMiddleware, with their id.
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            # The same for the development server's access lines (`make run`).
            "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }
