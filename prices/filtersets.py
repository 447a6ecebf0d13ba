import django_filters

from prices.models import Quote


class QuoteFilterSet(django_filters.FilterSet):
    symbol = django_filters.CharFilter(field_name="asset__symbol", lookup_expr="iexact")
    source = django_filters.CharFilter()

    class Meta:
        model = Quote
        fields = ["symbol", "asset", "source"]
