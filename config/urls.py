from django.contrib import admin
from django.urls import path

from config.views import HealthView
from prices.views import DataView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("data", DataView.as_view(), name="data"),
    path("health", HealthView.as_view(), name="health"),
]
