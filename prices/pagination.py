"""Pagination of quotes: keyset on (observed_at or price, id), 50 rows by default, 1000 at most.

`/data` adds the request id and the time the API took to its body, as its seed users expect.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from common.middleware import elapsed_ms
from common.pagination import KeysetPagination


class QuotePagination(KeysetPagination):
    page_size = 50
    max_page_size = 1000


class AssetPagination(KeysetPagination):
    page_size = 100
    max_page_size = 1000


class DataPagination(QuotePagination):
    """Quote pages with `request_id` and `api_latency_ms` in the body."""

    def get_paginated_response(self, data: list[Any]) -> Response:
        body = self.page_body(data)
        body["request_id"] = getattr(self.request, "request_id", "")
        body["api_latency_ms"] = elapsed_ms(self.request._request)
        return Response(body)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        page = super().get_paginated_response_schema(schema)
        page["required"] = [*page["required"], "request_id", "api_latency_ms"]
        page["properties"] = {
            **page["properties"],
            "request_id": {"type": "string"},
            "api_latency_ms": {
                "type": "number",
                "description": "Milliseconds from receiving the request to building this body.",
            },
        }
        return page
