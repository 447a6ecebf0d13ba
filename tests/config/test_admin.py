"""The console's admin site itself: its name, its dashboard's links into the lists. Each app's
admin pages are tested with the app (tests/<app>/test_admin.py)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.admin_pages import column, page
from tests.factories import RejectionFactory, RunFactory

pytestmark = pytest.mark.django_db

MODELS = [
    "runs_run",
    "runs_checkpoint",
    "ingestion_rawunit",
    "ingestion_rejection",
    "prices_asset",
    "prices_assetidentifier",
    "prices_quote",
]


def test_the_console_names_itself_and_its_first_page_links_every_list(admin_client):
    dashboard = page(admin_client.get(reverse("admin:index")))

    browse = dashboard.find("section", aria_labelledby="browse-title")
    links = {a.attrs["href"] for a in browse.find_all("a")}
    assert dashboard.find("title").text() == "Dashboard | Market data console"
    assert dashboard.find(id="site-name").text() == "Market data console"
    assert {reverse(f"admin:{model}_changelist") for model in MODELS} <= links


def test_a_tiles_rejected_count_leads_to_its_last_runs_rejections(admin_client, settings):
    settings.ETL_ENABLED_SOURCES = ["csv"]
    now = timezone.now()
    earlier = RunFactory(source="csv", started_at=now - timedelta(hours=3), records_rejected=1)
    RejectionFactory(run=earlier)
    last = RunFactory(source="csv", started_at=now - timedelta(minutes=5), records_rejected=2)
    wanted = {str(RejectionFactory(run=last).pk), str(RejectionFactory(run=last).pk)}

    tile = page(admin_client.get(reverse("admin:index"))).find("article", data_source="csv")
    link = tile.find("p", cls="tile-counts").find("a")
    rejections = admin_client.get(link.attrs["href"])

    assert link.text() == "2 rejected"
    assert "Last 24 h: 0 rows written, 3 rejected" in tile.text()
    assert set(column(rejections, "id")) == wanted
