"""OpenAPI post-processing: document the error responses every operation can give.

The views declare their success bodies; the errors come from cross-cutting code (the exception
handler, throttling, authentication, parameter validation), so they are added here once: a shared
`Error` component and, per operation, 400 where it takes parameters or a body, 401 for a bad
token, 404 where it has a path id, and 429 where it is throttled.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail", "request_id"],
    "properties": {
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Rejected parameters, each with its messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}

UNTHROTTLED_PATHS = {"/health"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            params = operation.get("parameters", [])
            if any(p["in"] == "query" for p in params) or "requestBody" in operation:
                responses.setdefault("400", _error("A parameter or the body is invalid."))
            responses.setdefault("401", _error("The token is missing or invalid."))
            if any(p["in"] == "path" for p in params):
                responses.setdefault("404", _error("No such object."))
            if path not in UNTHROTTLED_PATHS:
                responses.setdefault("429", _error("Too many requests; see Retry-After."))
            # Errors a view declared by description only have the common body too.
            for code, response in responses.items():
                if int(code) >= 400 and "content" not in response:
                    response["content"] = _error("")["content"]
    return result
