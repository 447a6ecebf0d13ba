"""The root paths the seed systems made familiar; /api/runs/ is routed in config/urls.py
(its POST, the trigger, lives in ingestion), as are /stats and /health, which the project
composes from every app."""

from collections.abc import Callable

from django.http import HttpResponseBase
from django.urls import path

from runs.views import RunViewSet


def _alias(action: str) -> Callable[..., HttpResponseBase]:
    """A root path for one of the viewset's GET actions, with that action's own options."""
    handler = getattr(RunViewSet, action)
    return RunViewSet.as_view({"get": action}, **getattr(handler, "kwargs", {}))


urlpatterns = [
    path("runs", _alias("list"), name="runs"),
    path("compare-runs", _alias("compare"), name="compare-runs"),
]
