"""What every app's log lines and stored errors share: the bound context and redaction.

- The context: `bind_log_context(request_id=...)` while a request is served
  (`common.middleware`), `run_id` and `source` while an ETL run works (`ingestion.pipeline`);
  `LogContextFilter` copies it onto each record. Plain `contextvars`, so it follows a request or
  a run through its thread.
- Redaction, one marker (`***`) wherever a secret is hidden: values of secret-looking
  environment variables (`SECRET_KEY`, `*_API_KEY`, `POSTGRES_PASSWORD`, the password inside
  `DATABASE_URL`, ...), passwords in URLs, secret-looking query parameters and authorization
  headers; the log formatters (`config.logging`), run errors and the HTTP client's messages all
  use `redact`.

No Django here: gunicorn's master process configures logging before any setting exists.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

#: The context keys a line may carry, in the order the plain format prints them.
CONTEXT_FIELDS = ("request_id", "run_id", "source")

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


class Redactor:
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
