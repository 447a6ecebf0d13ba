"""One JSON error shape for the whole API, whatever went wrong.

Every error body is `{"detail": "...", "request_id": "..."}`; a rejected parameter adds
`"errors": {"<parameter>": ["<message>", ...]}` and names the parameters in `detail` too. A
database that does not answer is a 503, not a 500; anything unexpected is logged with its
traceback and answered with a JSON 500 that carries the request id to quote in a report.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def _request_id(context: dict[str, Any]) -> str:
    request = context.get("request")
    return getattr(request, "request_id", "") if request is not None else ""


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF validation details as {parameter: [messages]}."""
    if isinstance(detail, dict):
        return {
            str(key): [str(m) for m in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    messages = detail if isinstance(detail, list) else [detail]
    return {"non_field_errors": [str(m) for m in messages]}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    response = exception_handler(exc, context)
    request_id = _request_id(context)
    if response is not None:
        if isinstance(exc, ValidationError):
            errors = _flatten(exc.detail)
            named = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items())
            response.data = {"detail": f"Invalid input. {named}", "errors": errors}
        elif not isinstance(response.data, dict):
            response.data = {"detail": response.data}
        response.data["request_id"] = request_id
        return response
    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("database unavailable: %s", exc)
        return Response(
            {"detail": "The database is unavailable.", "request_id": request_id},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, DataError):
        # Parameters are validated before they reach a query; this is the safety net for a value
        # the database still refuses (an out-of-range number, say): the caller's input, not a bug.
        logger.warning("database refused a value: %s", exc)
        return Response(
            {"detail": "A parameter value is out of range.", "request_id": request_id},
            status=status.HTTP_400_BAD_REQUEST,
        )
    logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
    return Response(
        {"detail": "Internal server error.", "request_id": request_id},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404: an unknown path answers JSON like every other API error."""
    return JsonResponse(
        {"detail": "Not found.", "request_id": getattr(request, "request_id", "")}, status=404
    )


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500 for errors outside DRF views (middleware, URL resolution)."""
    return JsonResponse(
        {"detail": "Internal server error.", "request_id": getattr(request, "request_id", "")},
        status=500,
    )
