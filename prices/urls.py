"""Routes of the prices app; config/urls.py mounts `router` under /api/ and /data at the root."""

from rest_framework.routers import SimpleRouter

from prices.views import AssetViewSet, QuoteViewSet

router = SimpleRouter()
router.register("prices", QuoteViewSet, basename="quote")
router.register("assets", AssetViewSet, basename="asset")
