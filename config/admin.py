"""The admin site of the console: Django's admin with the dashboard on its first page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from config.dashboard import source_tiles, top_assets


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Market data console"
    site_title = "Market data console"
    index_title = "Dashboard"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        context = {"tiles": source_tiles(), "assets": top_assets(), **(extra_context or {})}
        return super().index(request, extra_context=context)
