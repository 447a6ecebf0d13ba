"""OpenAPI post-processing: document the error responses every operation can give.

The views declare their success bodies; the errors come from cross-cutting code (the exception
handler, throttling, authentication, parameter validation), so they are added here once: a shared
`Error` component and, per operation, 400 where it takes parameters or a body, 401 for a bad
token, 404 where it has a path id, and 429 where it is throttled.

The rules behind those 400s that the filters cannot state themselves are added here too: a query
parameter given empty is refused (`minLength: 1` on string parameters), and `source` is one of
the ingestion sources' names, which the prices and runs apps that declare it may not import.
"""

from __future__ import annotations

from typing import Any

from common.filters import source_choices

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


def _document_query_rules(params: list[dict[str, Any]]) -> None:
    for param in params:
        schema = param.get("schema", {})
        if param["in"] != "query" or schema.get("type") != "string":
            continue
        if param["name"] == "source" and "enum" not in schema:
            schema["enum"] = [name for name, _ in source_choices()]
        if "enum" not in schema:
            schema.setdefault("minLength", 1)


# Root paths that also answer with a trailing slash; the schema documents the slash-less form.
SLASH_ALIASES = ("/data/", "/health/")


def hide_slash_aliases(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    return [endpoint for endpoint in endpoints if endpoint[0] not in SLASH_ALIASES]


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            params = operation.get("parameters", [])
            _document_query_rules(params)
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
