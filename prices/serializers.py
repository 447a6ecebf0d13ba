from rest_framework import serializers

from prices.models import Quote


class QuoteSerializer(serializers.ModelSerializer):
    """A quote with its canonical asset's id and symbol on the row."""

    asset_symbol = serializers.CharField(source="asset.symbol", read_only=True)
    asset_name = serializers.CharField(source="asset.name", read_only=True)

    class Meta:
        model = Quote
        fields = [
            "id",
            "asset",
            "asset_symbol",
            "asset_name",
            "source",
            "observed_at",
            "price_usd",
            "market_cap_usd",
            "volume_24h_usd",
            "percent_change_24h",
        ]
