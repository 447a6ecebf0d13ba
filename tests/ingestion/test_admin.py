"""The ingestion admin as the operator reads it: raw units listed by where they came from and
opened to their decoded content and download; rejections listed with where and why."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ingestion.models import RawUnit, Rejection, compress
from tests.admin_pages import (
    column,
    filter_choices,
    page,
    readonly_field,
    result_links,
    result_rows,
)
from tests.factories import RawUnitFactory, RejectionFactory, RunFactory

pytestmark = pytest.mark.django_db

UNITS = reverse("admin:ingestion_rawunit_changelist")
REJECTIONS = reverse("admin:ingestion_rejection_changelist")


def api_page(**fields) -> RawUnit:
    body = fields.pop("body", b'[{"id":"bitcoin","current_price":42000}]')
    return RawUnitFactory(
        **{
            "source": "coingecko",
            "kind": RawUnit.Kind.PAGE,
            "url": "https://api.coingecko.com/api/v3/coins/markets?page=1",
            "file_name": "",
            "line_start": None,
            "line_end": None,
            "media_type": "application/json",
            "content": compress(body),
            "size": len(body),
            **fields,
        }
    )


def test_unit_list_shows_each_unit_with_its_origin_items_size_and_run(admin_client):
    chunk_run, page_run = RunFactory(source="csv"), RunFactory(source="coingecko")
    chunk = RawUnitFactory(
        run=chunk_run,
        file_name="/data/coin_Bitcoin.csv",
        line_start=2,
        line_end=401,
        items=400,
        size=52311,
        fetched_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
    )
    page_unit = api_page(
        run=page_run, items=250, size=1234, fetched_at=datetime(2024, 5, 2, 8, 30, tzinfo=UTC)
    )

    rows = result_rows(admin_client.get(UNITS))

    assert rows == [
        {
            "id": str(page_unit.pk),
            "source": "coingecko",
            "kind": "API response page",
            "origin": "https://api.coingecko.com/api/v3/coins/markets?page=1",
            "items": "250",
            "size": "1234",
            "run": str(page_run),
            "fetched_at": "2024-05-02 08:30:00",
        },
        {
            "id": str(chunk.pk),
            "source": "csv",
            "kind": "CSV file chunk",
            "origin": "/data/coin_Bitcoin.csv lines 2-401",
            "items": "400",
            "size": "52311",
            "run": str(chunk_run),
            "fetched_at": "2024-05-01 10:00:00",
        },
    ]


@pytest.mark.parametrize(
    ("title", "choice", "listed"),
    [
        ("source", "coingecko", {"page"}),
        ("kind", "CSV file chunk", {"chunk", "old chunk"}),
        ("kind", "API response page", {"page"}),
        ("fetched at", "Past 7 days", {"chunk", "page"}),
    ],
)
def test_each_sidebar_filter_narrows_the_unit_list(admin_client, title, choice, listed):
    now = timezone.now()
    units = {
        "chunk": RawUnitFactory(fetched_at=now - timedelta(hours=1)),
        "page": api_page(fetched_at=now - timedelta(hours=2)),
        "old chunk": RawUnitFactory(fetched_at=now - timedelta(days=400)),
    }
    names = {str(unit.pk): name for name, unit in units.items()}

    query = filter_choices(admin_client.get(UNITS), title)[choice]
    shown = column(admin_client.get(UNITS + query), "id")

    assert {names[pk] for pk in shown} == listed


def test_a_csv_chunk_shows_its_lines_numbered_as_in_the_file(admin_client):
    unit = RawUnitFactory(
        file_name="/data/coin_Bitcoin.csv",
        line_start=120,
        line_end=121,
        content=compress(b"2024-01-01,BTC,42000.5\n2024-01-02,BTC,43000\n"),
        size=44,
        items=2,
    )

    response = admin_client.get(reverse("admin:ingestion_rawunit_change", args=[unit.pk]))

    content = readonly_field(response, "content_shown").text()
    assert re.search(r"\b120 2024-01-01,BTC,42000\.5 121 2024-01-02,BTC,43000$", content)
    assert readonly_field(response, "file_name").text() == "/data/coin_Bitcoin.csv"
    assert readonly_field(response, "items").text() == "2"
    assert readonly_field(response, "run").href() == reverse(
        "admin:runs_run_change", args=[unit.run.pk]
    )


def test_an_api_page_shows_its_json_pretty_printed(admin_client):
    unit = api_page(body=b'{"data":[{"id":"bitcoin","priceUsd":"42000.1"}]}')

    response = admin_client.get(reverse("admin:ingestion_rawunit_change", args=[unit.pk]))

    shown = readonly_field(response, "content_shown").text()
    assert shown.startswith('1 { 2 "data": [ 3 { 4 "id": "bitcoin", 5 "priceUsd": "42000.1"')
    assert readonly_field(response, "url").text() == unit.url


@pytest.mark.parametrize(
    ("kind", "filename"),
    [
        (RawUnit.Kind.CHUNK, "csv-unit-{pk}.csv"),
        (RawUnit.Kind.PAGE, "csv-unit-{pk}.json"),
        (RawUnit.Kind.RECORDS, "csv-unit-{pk}.jsonl"),
    ],
)
def test_the_download_link_gives_the_bytes_as_received(admin_client, kind, filename):
    body = b"Date,Close\r\n2024-01-01,1\r\n"
    unit = RawUnitFactory(kind=kind, content=compress(body), size=len(body))
    detail = admin_client.get(reverse("admin:ingestion_rawunit_change", args=[unit.pk]))
    link = readonly_field(detail, "download")

    response = admin_client.get(link.href())

    assert link.text() == f"the {len(body)} bytes as received"
    assert response.content == body
    expected = filename.format(pk=unit.pk)
    assert response["Content-Disposition"] == f'attachment; filename="{expected}"'


def test_units_and_rejections_can_be_viewed_but_not_added_changed_or_deleted(admin_client):
    rejection = RejectionFactory()
    for model, pk in (("rawunit", rejection.raw_unit.pk), ("rejection", rejection.pk)):
        add = reverse(f"admin:ingestion_{model}_add")
        listing = page(admin_client.get(reverse(f"admin:ingestion_{model}_changelist")))
        detail = admin_client.get(reverse(f"admin:ingestion_{model}_change", args=[pk]))
        delete = admin_client.post(
            reverse(f"admin:ingestion_{model}_delete", args=[pk]), {"post": "yes"}
        )

        assert listing.find("a", href=add) is None
        assert listing.find("select", name="action") is None
        assert page(detail).find("h1").text().startswith("View ")
        assert page(detail).find("input", name="_save") is None
        assert delete.status_code == 403
        assert admin_client.get(add).status_code == 403
    assert Rejection.objects.filter(pk=rejection.pk).exists()
    assert RawUnit.objects.filter(pk=rejection.raw_unit.pk).exists()


def test_rejection_list_shows_where_and_why_each_item_was_rejected(admin_client):
    run = RunFactory(source="coingecko")
    unit = api_page(run=run)
    older = RejectionFactory(
        source="coingecko",
        run=run,
        raw_unit=unit,
        location="bitcoin (item 3)",
        reason="price_usd is negative",
        created_at=datetime(2024, 5, 1, 9, tzinfo=UTC),
    )
    newer = RejectionFactory(
        location="coin_Bitcoin.csv:17",
        reason="missing Close",
        created_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
    )

    rows = result_rows(admin_client.get(REJECTIONS))

    assert rows == [
        {
            "id": str(newer.pk),
            "source": "csv",
            "location": "coin_Bitcoin.csv:17",
            "reason": "missing Close",
            "run": str(newer.run),
            "raw_unit": str(newer.raw_unit),
            "created_at": "2024-05-01 10:00:00",
        },
        {
            "id": str(older.pk),
            "source": "coingecko",
            "location": "bitcoin (item 3)",
            "reason": "price_usd is negative",
            "run": str(run),
            "raw_unit": f"coingecko page {unit.pk}",
            "created_at": "2024-05-01 09:00:00",
        },
    ]
    assert result_links(admin_client.get(REJECTIONS))[0]["id"] == reverse(
        "admin:ingestion_rejection_change", args=[newer.pk]
    )


@pytest.mark.parametrize(
    ("title", "choice", "listed"),
    [
        ("source", "coingecko", {"api"}),
        ("source", "csv", {"csv", "old csv"}),
        ("created at", "Past 7 days", {"csv", "api"}),
    ],
)
def test_each_sidebar_filter_narrows_the_rejection_list(admin_client, title, choice, listed):
    now = timezone.now()
    rejections = {
        "csv": RejectionFactory(created_at=now - timedelta(hours=1)),
        "api": RejectionFactory(source="coingecko", created_at=now - timedelta(hours=2)),
        "old csv": RejectionFactory(created_at=now - timedelta(days=400)),
    }
    names = {str(r.pk): name for name, r in rejections.items()}

    query = filter_choices(admin_client.get(REJECTIONS), title)[choice]
    shown = column(admin_client.get(REJECTIONS + query), "id")

    assert {names[pk] for pk in shown} == listed


def test_rejections_are_found_by_the_text_received(admin_client):
    wanted = RejectionFactory(reason="bad number", text="2024-01-01,BTC,4x2")
    RejectionFactory(reason="bad number", text="2024-01-02,BTC,oops")

    shown = column(admin_client.get(REJECTIONS, {"q": "4x2"}), "id")

    assert shown == [str(wanted.pk)]


def test_a_rejection_page_shows_the_item_as_received_and_links_its_run_and_unit(admin_client):
    rejection = RejectionFactory(
        location="coin_Bitcoin.csv:17",
        reason="missing Close",
        text="2024-01-01,BTC,,",
    )

    response = admin_client.get(reverse("admin:ingestion_rejection_change", args=[rejection.pk]))

    assert readonly_field(response, "location").text() == "coin_Bitcoin.csv:17"
    assert readonly_field(response, "reason").text() == "missing Close"
    assert readonly_field(response, "text").text() == "2024-01-01,BTC,,"
    assert readonly_field(response, "run").href() == reverse(
        "admin:runs_run_change", args=[rejection.run.pk]
    )
    assert readonly_field(response, "raw_unit").href() == reverse(
        "admin:ingestion_rawunit_change", args=[rejection.raw_unit.pk]
    )
