import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Max, Min, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from common.display import badge, number, readable
from prices.candles import BAR_SECONDS, bucket_start
from prices.consolidation import consolidated_price
from prices.coverage import asset_span, coverage
from prices.export import quote_csv
from prices.models import Asset, AssetIdentifier, Quote
from prices.services import merge_assets, remap_identifier
from runs.admin import ReadOnlyAdmin

# The admin classes are generic in django-stubs only (Django's cannot be subscripted): the
# parametrized bases are for the type checker.
if TYPE_CHECKING:
    _AssetModelAdmin = admin.ModelAdmin[Asset]
    _AssetIdentifierModelAdmin = admin.ModelAdmin[AssetIdentifier]
    _AssetIdentifierTabularInline = admin.TabularInline[AssetIdentifier, Asset]
else:
    _AssetModelAdmin = _AssetIdentifierModelAdmin = admin.ModelAdmin
    _AssetIdentifierTabularInline = admin.TabularInline

# Identifiers below this confidence (cross-provider matches, new assets) deserve a look.
LOW_CONFIDENCE = Decimal("0.9")


IDENTIFIER_FIELDS = ["source", "external_id", "symbol", "name", "asset", "method", "confidence"]


def confirmation_page(
    model_admin: "admin.ModelAdmin[Any]",
    request: HttpRequest,
    template: str,
    title: str,
    **context: Any,
) -> TemplateResponse:
    """The intermediate page of an admin action: it posts the selection back with the choice."""
    opts = model_admin.model._meta
    return TemplateResponse(
        request,
        f"admin/{opts.app_label}/{opts.model_name}/{template}",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": opts,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            **context,
        },
    )


class AssetIdentifierInline(_AssetIdentifierTabularInline):
    """Shown, not edited: a mapping changes through the merge and re-map actions, which move
    the quotes with it and record the change as manual."""

    model = AssetIdentifier
    extra = 0
    readonly_fields = [f for f in IDENTIFIER_FIELDS if f != "asset"]
    fields = [*readonly_fields]

    def has_add_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False

    # An inline's obj is the parent, an asset (so says InlineModelAdmin's stub); mypy checks it
    # against BaseModelAdmin's too, where obj is the inline's own model.
    def has_delete_permission(  # type: ignore[override]
        self, request: HttpRequest, obj: Asset | None = None
    ) -> bool:
        return False


class NeedsReviewFilter(admin.SimpleListFilter):
    title = "needs review"
    parameter_name = "review"

    def lookups(
        self, request: HttpRequest, model_admin: "admin.ModelAdmin[Any]"
    ) -> list[tuple[str, str]]:
        return [("yes", "Unverified or low-confidence mapping")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Asset]) -> QuerySet[Asset]:
        if self.value() != "yes":
            return queryset
        low = AssetIdentifier.objects.filter(asset=OuterRef("pk"), confidence__lt=LOW_CONFIDENCE)
        return queryset.filter(Exists(low) | Q(verified=False))


@admin.register(Asset)
class AssetAdmin(_AssetModelAdmin):
    list_display = ["symbol", "name", "slug", "rank", "verified", "created_at"]
    list_filter = [NeedsReviewFilter, "verified"]
    search_fields = ["slug", "symbol", "name", "identifiers__external_id"]
    readonly_fields = ["consolidated", "coverage", "created_at"]
    inlines = [AssetIdentifierInline]
    actions = ["merge"]

    @admin.display(description="consolidated price")
    def consolidated(self, asset: Asset) -> str:
        found = consolidated_price(asset_id=asset.pk) if asset.pk else None
        if found is None:
            latest = (
                Quote.objects.filter(asset=asset).order_by("-observed_at").first()
                if asset.pk
                else None
            )
            if latest is None:
                return "No quotes yet."
            return format_html(
                "No source has a fresh quote. Latest: {} USD from {} at {} UTC.",
                number(latest.price_usd),
                latest.source,
                f"{latest.observed_at:%Y-%m-%d %H:%M}",
            )
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td class="num">{}</td><td>{}</td>'
            '<td class="num">{}</td><td>{}</td></tr>',
            (
                (
                    s["source"],
                    number(s["price_usd"]),
                    f"{s['observed_at']:%Y-%m-%d %H:%M}",
                    f"{readable(s['deviation'] * 100, digits=3)} %",
                    badge("failing", "deviates") if s["flagged"] else "",
                )
                for s in found["sources"]
            ),
        )
        return format_html(
            "<p>Median <strong>{} USD</strong> from {} source(s), spread {} %</p>"
            '<table class="console-table"><tr><th>source</th><th class="num">price (USD)</th>'
            '<th>observed (UTC)</th><th class="num">deviation</th><th></th></tr>{}</table>',
            number(found["median_usd"]),
            found["source_count"],
            readable(found["spread"] * 100, digits=3),
            rows,
        )

    @admin.display(description="daily coverage")
    def coverage(self, asset: Asset) -> str:
        """Per source: its first and last day, the days it has out of the asset's whole span,
        and its largest gaps."""
        first, last = asset_span(asset.pk) if asset.pk else (None, None)
        if first is None or last is None:
            return "No quotes yet."
        report = coverage(
            asset_id=asset.pk,
            interval="1d",
            start=first,
            end=bucket_start(last, "1d") + timedelta(days=1),
        )
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td>'
            '<td class="num">{}</td><td>{}</td></tr>',
            (
                (
                    entry.source,
                    f"{entry.first:%Y-%m-%d}" if entry.first else "-",
                    f"{entry.last:%Y-%m-%d}" if entry.last else "-",
                    f"{entry.present:,} / {entry.expected:,}",
                    f"{entry.present / entry.expected:.1%}" if entry.expected else "-",
                    "; ".join(
                        f"{span.start:%Y-%m-%d} to {span.end - timedelta(days=1):%Y-%m-%d} "
                        f"({span.buckets:,} d)"
                        for span in sorted(entry.missing_spans, key=lambda s: -s.buckets)[:3]
                    )
                    or "none",
                )
                for entry in report
            ),
        )
        return format_html(
            '<table class="console-table coverage"><tr><th>source</th><th>first day</th>'
            '<th>last day</th><th class="num">days with quotes</th><th class="num">covered</th>'
            "<th>largest gaps</th></tr>{}</table>",
            rows,
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {**(extra_context or {})}
        if object_id.isdigit():
            span = Quote.objects.filter(asset_id=int(object_id)).aggregate(
                first=Min("observed_at"), last=Max("observed_at")
            )
            if span["last"] is not None:
                sources = sorted(
                    set(
                        AssetIdentifier.objects.filter(asset_id=int(object_id)).values_list(
                            "source", flat=True
                        )
                    )
                )
                context["chart"] = {
                    "url": reverse("asset-candles", args=[object_id]),
                    "first": span["first"],
                    "last": span["last"],
                    "sources_json": json.dumps(sources),
                    "ranges": ["24h", "7d", "30d", "1y", "all"],
                    "initial": "30d"
                    if span["last"] - span["first"] > timedelta(days=60)
                    else "all",
                }
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.action(description="Merge selected assets into one…")
    def merge(self, request: HttpRequest, queryset: QuerySet[Asset]) -> HttpResponse | None:
        assets = list(queryset.order_by("-verified", "rank", "pk"))
        if len(assets) < 2:
            self.message_user(request, "Select at least two assets to merge.", messages.WARNING)
            return None
        target_id = request.POST.get("target")
        if target_id:
            target = next((a for a in assets if str(a.pk) == target_id), None)
            if target is not None:
                report = merge_assets(target=target, others=assets)
                self.message_user(request, str(report), messages.SUCCESS)
                return None
        return confirmation_page(self, request, "merge.html", "Merge assets", assets=assets)


@admin.register(AssetIdentifier)
class AssetIdentifierAdmin(_AssetIdentifierModelAdmin):
    list_display = ["source", "external_id", "symbol", "name", "asset", "method", "confidence"]
    list_filter = ["source", "method", "asset__verified"]
    search_fields = ["external_id", "symbol", "name", "asset__slug"]
    list_select_related = ["asset"]
    # Read-only for the same reason as the inline: use the "Re-map" action.
    readonly_fields = IDENTIFIER_FIELDS
    actions = ["remap"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Re-map selected identifiers to another asset…")
    def remap(
        self, request: HttpRequest, queryset: QuerySet[AssetIdentifier]
    ) -> HttpResponse | None:
        slug = request.POST.get("target_slug", "").strip()
        if slug:
            target = Asset.objects.filter(slug=slug).first()
            if target is None:
                self.message_user(request, f"No asset with slug {slug!r}.", messages.ERROR)
                return None
            for identifier in queryset.select_related("asset"):
                report = remap_identifier(identifier=identifier, target=target)
                self.message_user(request, str(report), messages.SUCCESS)
            return None
        return confirmation_page(
            self,
            request,
            "remap.html",
            "Re-map identifiers",
            identifiers=list(queryset.select_related("asset")),
        )


class IntervalFilter(admin.SimpleListFilter):
    """Snapshots, or bars of one length. The choices are the lengths a quote may have, not the
    distinct values of the column (a scan of every quote on each page), and a snapshot's empty
    interval has a name."""

    title = "interval"
    parameter_name = "interval"

    def lookups(
        self, request: HttpRequest, model_admin: "admin.ModelAdmin[Any]"
    ) -> list[tuple[str, str]]:
        return [("snapshot", "snapshot"), *((name, f"{name} bar") for name in BAR_SECONDS)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Quote]) -> QuerySet[Quote]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(interval="" if value == "snapshot" else value)


class AssetFilter(admin.SimpleListFilter):
    """Quotes of one asset, picked with the admin's autocomplete (searching the asset list's
    fields: symbol, name, slug, provider id) rather than from a list of every asset."""

    title = "asset"
    parameter_name = "asset"
    template = "admin/prices/quote/asset_filter.html"

    def lookups(
        self, request: HttpRequest, model_admin: "admin.ModelAdmin[Any]"
    ) -> list[tuple[str, str]]:
        value = self.value()
        if value and value.isdigit():
            asset = Asset.objects.filter(pk=int(value)).first()
            if asset is not None:
                return [(str(asset.pk), str(asset))]
        return []

    def has_output(self) -> bool:
        return True

    # Not Django's choice dicts (query_string): this filter's own template reads these keys.
    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        """The chosen asset, for the template's select box, and the link that clears it."""
        for value, label in self.lookup_choices:
            yield {
                "value": value,
                "display": label,
                "selected": self.value() == value,
                "clear": changelist.get_query_string(remove=[self.parameter_name]),
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Quote]) -> QuerySet[Quote]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(asset_id=int(value))


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = [
        "observed_at",
        "asset",
        "source",
        "price",
        "bar",
        "market_cap",
        "volume",
        "change_24h",
        "run",
    ]
    list_filter = [AssetFilter, "source", IntervalFilter, "observed_at"]
    search_fields = ["asset__symbol", "asset__slug", "asset__name"]
    # Serves the asset filter's autocomplete (the field itself is read-only).
    autocomplete_fields = ["asset"]
    date_hierarchy = "observed_at"
    list_select_related = ["asset", "run"]
    readonly_fields = [field.name for field in Quote._meta.fields]
    show_full_result_count = False
    change_list_template = "admin/prices/quote/change_list.html"

    class Media:
        css = {"all": ["admin/css/vendor/select2/select2.css", "admin/css/autocomplete.css"]}
        js = [
            "admin/js/vendor/jquery/jquery.js",
            "admin/js/vendor/select2/select2.full.js",
            "admin/js/jquery.init.js",
            "admin/js/autocomplete.js",
            "prices/asset_filter.js",
        ]

    @admin.display(description="price (USD)", ordering="price_usd")
    def price(self, quote: Quote) -> str:
        return number(quote.price_usd)

    @admin.display(description="bar")
    def bar(self, quote: Quote) -> str:
        if not quote.interval:
            return "-"
        return (
            f"{quote.interval}: O {number(quote.open_usd)} H {number(quote.high_usd)} "
            f"L {number(quote.low_usd)}"
        )

    @admin.display(description="market cap", ordering="market_cap_usd")
    def market_cap(self, quote: Quote) -> str:
        return number(quote.market_cap_usd)

    @admin.display(description="volume 24 h", ordering="volume_24h_usd")
    def volume(self, quote: Quote) -> str:
        return number(quote.volume_24h_usd)

    @admin.display(description="24 h", ordering="percent_change_24h")
    def change_24h(self, quote: Quote) -> str:
        value = quote.percent_change_24h
        return "-" if value is None else f"{readable(value, digits=3, sign=True)} %"

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv),
            name="prices_quote_export",
        )
        return [export, *super().get_urls()]

    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse:
        """The rows the list shows with its current filters and search, every page of them."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return quote_csv(changelist.get_queryset(request).order_by("observed_at", "id"))
