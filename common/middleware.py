"""Request ids and server time: one id per request, on the response and on every log line.

A caller (a load balancer, another service) may send its own `X-Request-ID`; a well-formed one is
kept so logs join up across services, anything else is replaced by a fresh id. The id is on
`request.request_id` for views (error bodies and `/data` carry it), on the response's
`X-Request-ID` header, and in the log context (`config.logging.bind_log_context`), so every line
logged while the request is served has it.

The server's clock is on the response as `X-Server-Time` (ISO 8601, UTC, when the response was
made), and the time spent as `Server-Timing: app;dur=<ms>`, available to views while
they work via `elapsed_ms(request)` (`/data`'s `api_latency_ms`), and in the one log line each
request ends with: method, path (never the query string, which may carry secrets), status and
duration.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponseBase

from common.logs import bind_log_context

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
SERVER_TIME_HEADER = "X-Server-Time"
# Bounded and plain, so a caller cannot inject log lines or bloat every line with its header.
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Probes and scrapes arrive every few seconds; at INFO they would drown the requests that matter.
_QUIET_PATHS = frozenset({"/health", "/metrics"})
_STARTED_ATTR = "_request_started"


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str | None:
    """The caller's id if it is safe to keep, else None."""
    if value and _ACCEPTED_ID.fullmatch(value):
        return value
    return None


def elapsed_ms(request: HttpRequest) -> float:
    """Milliseconds since `RequestIdMiddleware` received `request` (0.0 if it never did)."""
    started: float | None = getattr(request, _STARTED_ATTR, None)
    if started is None:
        return 0.0
    return round((time.perf_counter() - started) * 1000, 2)


class RequestIdMiddleware:
    """Give each request an id, bind it to the log context, and put the id and the time spent on
    the response (`X-Request-ID`, `Server-Timing`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        setattr(request, _STARTED_ATTR, time.perf_counter())
        request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        with bind_log_context(request_id=request_id):
            response = self.get_response(request)
            duration = elapsed_ms(request)
            response[REQUEST_ID_HEADER] = request_id
            response["Server-Timing"] = f"app;dur={duration}"
            response[SERVER_TIME_HEADER] = datetime.now(UTC).isoformat(timespec="milliseconds")
            logger.log(
                logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO,
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                duration,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": duration,
                },
            )
        return response
