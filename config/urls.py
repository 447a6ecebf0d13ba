"""URLs: the familiar root paths, the full API under /api/, OpenAPI and Swagger UI, the admin.

/api/ is one router (its root page lists everything). /api/runs/ is served by the ingestion
app's viewset because its POST starts runs; runs and prices never import ingestion. /health
and /stats are runs' views, given here what runs cannot know: the sources cron runs
(ingestion) and each app's row counts.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from config.views import landing, stats_tables
from ingestion.services import monitored_sources
from ingestion.views import RunTriggerViewSet
from prices.urls import router as prices_router
from prices.views import CandleView, CoverageView, DataViewSet
from runs.metrics import metrics_view
from runs.views import HealthView, StatsView

router = DefaultRouter()
router.registry.extend(prices_router.registry)
router.register("runs", RunTriggerViewSet, basename="run")

handler404 = "config.exceptions.not_found"
handler500 = "config.exceptions.server_error"

health = HealthView.as_view(monitored=monitored_sources)
stats = StatsView.as_view(tables=stats_tables)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/assets/<str:key>/candles", CandleView.as_view(), name="asset-candles"),
    path("api/assets/<str:key>/coverage", CoverageView.as_view(), name="asset-coverage"),
    # Where the run viewset had its stats action; the same view as /stats.
    path("api/runs/stats/", stats, name="run-stats"),
    path("api/", include(router.urls)),
    path("data", DataViewSet.as_view({"get": "list"}), name="data"),
    path("health", health, name="health"),
    path("stats", stats, name="stats"),
    # The same with a trailing slash (left out of the schema: config.schema.SLASH_ALIASES).
    path("data/", DataViewSet.as_view({"get": "list"})),
    path("health/", health),
    path("metrics", metrics_view, name="metrics"),
    path("run-etl", RunTriggerViewSet.as_view({"post": "create"}), name="run-etl"),
    path("", landing, name="landing"),
    path("", include("runs.urls")),
]
