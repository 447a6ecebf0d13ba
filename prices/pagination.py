from rest_framework.pagination import CursorPagination


class QuoteCursorPagination(CursorPagination):
    """Keyset pagination on (observed_at, id): a deep page costs what the first one does."""

    ordering = ("-observed_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 1000
