from rest_framework import generics

from prices.filtersets import QuoteFilterSet
from prices.models import Quote
from prices.pagination import QuoteCursorPagination
from prices.serializers import QuoteSerializer


class DataView(generics.ListAPIView):
    """Price quotes, newest first: `GET /data?symbol=BTC`."""

    queryset = Quote.objects.select_related("asset")
    serializer_class = QuoteSerializer
    filterset_class = QuoteFilterSet
    pagination_class = QuoteCursorPagination
