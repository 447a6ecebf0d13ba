"""Keyset (cursor) pagination: a deep page costs what the first one does.

A page is the `limit` rows after a position in a total order: one ordering field plus a unique
tiebreaker (the primary key). The cursor carries that position, (value, id), and the next page is
`WHERE (field, id) after (value, id) ORDER BY field, id LIMIT n`, which an index on the field
answers directly: no OFFSET scan and no COUNT. New rows never shift a cursor, because the position
is a key, not a row number.

The ordering comes from `KeysetOrderingFilter` on the view (`?ordering=-price_usd`) or, without
it, from the view's `ordering`. The paginator always orders the queryset itself, so an unordered
or ambiguously ordered queryset cannot reach the client.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import (
    BigIntegerField,
    BooleanField,
    F,
    Field,
    Func,
    Model,
    Q,
    QuerySet,
    Value,
)
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from common.filters import MAX_ID, refuse_blank


class RowCompare(Func):
    """`(a, b) < (c, d)`: SQL row-value comparison (PostgreSQL, and SQLite since 3.15)."""

    output_field = BooleanField()

    def __init__(self, *expressions: Any, operator: str) -> None:
        super().__init__(*expressions)
        self.operator = operator

    # Func's signature takes function, template and arg_joiner, which this one has no use for:
    # the compiler calls as_sql(compiler, connection).
    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        return f"({parts[0]}, {parts[1]}) {self.operator} ({parts[2]}, {parts[3]})", params


@dataclass(frozen=True)
class Cursor:
    ordering: str
    value: Any
    id: int
    reverse: bool


class KeysetPagination(BasePagination):
    """`?limit=` rows per page and opaque `next` / `previous` links."""

    page_size = 50
    max_page_size = 1000
    page_size_query_param = "limit"
    cursor_query_param = "cursor"
    tiebreaker = "id"

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.limit = self.get_page_size(request)
        self.ordering = self.get_ordering(request, queryset, view)
        field = self.ordering.lstrip("-")
        cursor = self.decode_cursor(request, queryset.model, field)
        # Rows are fetched in the page's direction: a previous page walks the order backwards.
        reverse = cursor is not None and cursor.reverse
        descending = self.ordering.startswith("-") != reverse
        sign = "-" if descending else ""
        queryset = queryset.order_by(f"{sign}{field}", f"{sign}{self.tiebreaker}")
        if cursor is not None:
            queryset = queryset.filter(self.after(field, descending, cursor, queryset.model))
        # Model instances, or dicts for a queryset of values().
        rows: list[Model | dict[str, Any]] = list(queryset[: self.limit + 1])
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        if reverse:
            rows.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, cursor is not None
        self.rows = rows
        return rows

    def after(self, field: str, descending: bool, cursor: Cursor, model: type[Model]) -> Q:
        """Rows strictly after the cursor: `(field, id) < (v, i)` as a row comparison, which an
        index on (field, id) answers as a range; `field <= v` besides, for indexes that end in
        the field (e.g. (asset, field) when the query also filters on asset)."""
        # An ordering field is a concrete column (get_field is typed for relations too).
        output = cast("Field[Any, Any]", model._meta.get_field(field))
        row = RowCompare(
            F(field),
            F(self.tiebreaker),
            Value(cursor.value, output_field=output),
            Value(cursor.id, output_field=BigIntegerField()),
            operator="<" if descending else ">",
        )
        bound = Q(**{f"{field}__lte" if descending else f"{field}__gte": cursor.value})
        return bound & Q(row)

    # --- parameters --------------------------------------------------------------------------

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        refuse_blank(self.page_size_query_param, raw)
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return size

    def get_ordering(
        self, request: Request, queryset: QuerySet[Any, Any], view: APIView | None
    ) -> str:
        for backend in getattr(view, "filter_backends", []):
            if isinstance(backend, type) and hasattr(backend, "get_keyset_ordering"):
                keyset: str = backend().get_keyset_ordering(request, view)
                return keyset
        ordering = getattr(view, "ordering", None)
        if not isinstance(ordering, str):
            raise TypeError(
                f"{type(view).__name__} needs `ordering` (one field name) for keyset pagination"
            )
        return ordering

    # --- cursors ------------------------------------------------------------------------------

    def encode_cursor(self, row: Model | dict[str, Any], *, reverse: bool) -> str:
        field = self.ordering.lstrip("-")
        return encode_cursor(
            Cursor(
                ordering=self.ordering,
                value=_value(row, field),
                id=_value(row, self.tiebreaker),
                reverse=reverse,
            )
        )

    def decode_cursor(self, request: Request, model: type[Model], field: str) -> Cursor | None:
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        refuse_blank(self.cursor_query_param, raw)
        try:
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            ordering, value, row_id, reverse = data["o"], data["v"], data["i"], data["r"]
            if ordering != self.ordering:
                raise ValidationError(
                    {self.cursor_query_param: ["This cursor belongs to another ordering."]}
                )
            if type(row_id) is not int or not 0 < row_id <= MAX_ID:
                raise ValueError("bad id")
            model_field = cast("Field[Any, Any]", model._meta.get_field(field))
            # clean() runs the field's validators too: a forged cursor cannot smuggle a value the
            # column could not hold into the query.
            value = model_field.clean(value, None)
            if isinstance(value, datetime):
                value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        except ValidationError:
            raise
        except (
            binascii.Error,
            UnicodeDecodeError,
            ValueError,
            TypeError,
            KeyError,
            OverflowError,
            # A forged cursor nested deeper than the JSON parser recurses: `[[[[...`.
            RecursionError,
            DjangoValidationError,
        ):
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
        return Cursor(ordering=ordering, value=value, id=row_id, reverse=bool(reverse))

    # --- response -----------------------------------------------------------------------------

    def link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return remove_query_param(self.base_url, self.cursor_query_param)
        return replace_query_param(self.base_url, self.cursor_query_param, cursor)

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        if not self.rows:
            # Nothing before the position we walked back from: the start is the next page.
            return self.link(None)
        return self.link(self.encode_cursor(self.rows[-1], reverse=False))

    def get_previous_link(self) -> str | None:
        if not self.has_previous or not self.rows:
            return None
        return self.link(self.encode_cursor(self.rows[0], reverse=True))

    def page_body(self, data: list[Any]) -> dict[str, Any]:
        return {
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": data,
        }

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response(self.page_body(data))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from a `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


def _value(row: Model | dict[str, Any], name: str) -> Any:
    """A column of a page row: a model instance, or a dict from `values()`."""
    return row[name] if isinstance(row, dict) else getattr(row, name)


def encode_cursor(cursor: Cursor) -> str:
    value = cursor.value.isoformat() if isinstance(cursor.value, datetime) else str(cursor.value)
    data = {"o": cursor.ordering, "v": value, "i": cursor.id, "r": int(cursor.reverse)}
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
