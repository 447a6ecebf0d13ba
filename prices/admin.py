from django.contrib import admin

from prices.models import Asset, AssetIdentifier, Quote
from runs.admin import ReadOnlyAdmin


class AssetIdentifierInline(admin.TabularInline):
    model = AssetIdentifier
    extra = 0
    fields = ["source", "external_id", "symbol", "name", "method", "confidence"]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["slug", "symbol", "name", "verified", "created_at"]
    list_filter = ["verified"]
    search_fields = ["slug", "symbol", "name", "identifiers__external_id"]
    inlines = [AssetIdentifierInline]


@admin.register(AssetIdentifier)
class AssetIdentifierAdmin(admin.ModelAdmin):
    list_display = ["source", "external_id", "asset", "method", "confidence"]
    list_filter = ["source", "method"]
    search_fields = ["external_id", "symbol", "name", "asset__slug"]
    list_select_related = ["asset"]
    autocomplete_fields = ["asset"]


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = ["observed_at", "asset", "source", "price_usd", "market_cap_usd", "run"]
    list_filter = ["source", "observed_at"]
    search_fields = ["asset__symbol", "asset__slug", "asset__name"]
    date_hierarchy = "observed_at"
    list_select_related = ["asset", "run"]
    readonly_fields = [field.name for field in Quote._meta.fields]
    show_full_result_count = False
