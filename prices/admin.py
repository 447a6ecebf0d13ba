from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from prices.consolidation import consolidated_price
from prices.models import Asset, AssetIdentifier, Quote
from prices.services import merge_assets, remap_identifier
from runs.admin import ReadOnlyAdmin

# Identifiers below this confidence (cross-provider matches, new assets) deserve a look.
LOW_CONFIDENCE = Decimal("0.9")


IDENTIFIER_FIELDS = ["source", "external_id", "symbol", "name", "asset", "method", "confidence"]


def confirmation_page(
    model_admin: admin.ModelAdmin, request: HttpRequest, template: str, title: str, **context: Any
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
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            **context,
        },
    )


class AssetIdentifierInline(admin.TabularInline):
    """Shown, not edited: a mapping changes through the merge and re-map actions, which move
    the quotes with it and record the change as manual."""

    model = AssetIdentifier
    extra = 0
    fields = readonly_fields = [f for f in IDENTIFIER_FIELDS if f != "asset"]

    def has_add_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False


class NeedsReviewFilter(admin.SimpleListFilter):
    title = "needs review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Unverified or low-confidence mapping")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "yes":
            return queryset
        low = AssetIdentifier.objects.filter(asset=OuterRef("pk"), confidence__lt=LOW_CONFIDENCE)
        return queryset.filter(Exists(low) | Q(verified=False))


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["slug", "symbol", "name", "rank", "verified", "created_at"]
    list_filter = [NeedsReviewFilter, "verified"]
    search_fields = ["slug", "symbol", "name", "identifiers__external_id"]
    readonly_fields = ["consolidated", "created_at"]
    inlines = [AssetIdentifierInline]
    actions = ["merge"]

    @admin.display(description="consolidated price")
    def consolidated(self, asset: Asset) -> str:
        found = consolidated_price(asset_id=asset.pk) if asset.pk else None
        if found is None:
            return "no fresh quote from any source"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    s["source"],
                    s["price_usd"],
                    f"{s['observed_at']:%Y-%m-%d %H:%M}",
                    s["deviation"],
                    "DEVIATES" if s["flagged"] else "",
                )
                for s in found["sources"]
            ),
        )
        return format_html(
            "median {} USD from {} source(s), spread {}"
            "<table><tr><th>source</th><th>price</th><th>observed (UTC)</th>"
            "<th>deviation</th><th></th></tr>{}</table>",
            found["median_usd"],
            found["source_count"],
            found["spread"],
            rows,
        )

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
class AssetIdentifierAdmin(admin.ModelAdmin):
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


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = ["observed_at", "asset", "source", "price_usd", "market_cap_usd", "run"]
    list_filter = ["source", "observed_at"]
    search_fields = ["asset__symbol", "asset__slug", "asset__name"]
    date_hierarchy = "observed_at"
    list_select_related = ["asset", "run"]
    readonly_fields = [field.name for field in Quote._meta.fields]
    show_full_result_count = False
