"""The runs admin as the operator reads it: one line a run, its rejected count leading to its
rejections, a run's page with counts, error, drift and checkpoints; checkpoints by source."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Checkpoint, Run
from tests.admin_pages import (
    column,
    fieldset_fields,
    filter_choices,
    messages,
    page,
    readonly_field,
    result_links,
    result_rows,
    selected_filter_choice,
)
from tests.factories import RejectionFactory, RunFactory

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:runs_run_changelist")
CHECKPOINTS = reverse("admin:runs_checkpoint_changelist")
REJECTIONS = reverse("admin:ingestion_rejection_changelist")
DRIFT = {
    "items": 250,
    "added": [{"field": "roi", "count": 250, "share": 1.0}],
    "missing": [{"field": "market_cap", "count": 25, "share": 0.1, "required": True}],
}


def test_run_list_shows_each_run_on_one_line(admin_client):
    start = datetime(2024, 3, 1, 12, tzinfo=UTC)
    failed = RunFactory(
        source="coingecko",
        status=Run.Status.FAILED,
        trigger=Run.Trigger.CRON,
        started_at=start,
        finished_at=start + timedelta(seconds=90),
        records_read=12345,
        records_inserted=12000,
        records_updated=300,
        records_unchanged=40,
        records_rejected=5,
        error="CoinGecko: 429 Too Many Requests\nretry-after: 119",
        drift={"items": 250, "added": [{"field": "roi", "count": 250, "share": 1.0}]},
    )
    renormalize = RunFactory(
        source="csv",
        kind=Run.Kind.RENORMALIZE,
        started_at=start + timedelta(hours=1),
        finished_at=start + timedelta(hours=1, seconds=2),
        records_read=7,
        records_unchanged=7,
    )

    rows = result_rows(admin_client.get(RUNS))

    assert rows == [
        {
            "id": str(renormalize.pk),
            "source": "csv",
            "kind_name": "renormalize",
            "status_badge": "succeeded",
            "trigger_name": "cli",
            "started_at": "2024-03-01 13:00:00",
            "duration_text": "2.00 s",
            "read": "7",
            "new": "0",
            "updated": "0",
            "same": "7",
            "rejected": "0",
            "error_line": "-",
            "drift_summary": "-",
        },
        {
            "id": str(failed.pk),
            "source": "coingecko",
            "kind_name": "ingest",
            "status_badge": "failed",
            "trigger_name": "cron",
            "started_at": "2024-03-01 12:00:00",
            "duration_text": "1 min 30 s",
            "read": "12,345",
            "new": "12,000",
            "updated": "300",
            "same": "40",
            "rejected": "5",
            "error_line": "CoinGecko: 429 Too Many Requests",
            "drift_summary": "added: roi in 250 of 250 items (100%)",
        },
    ]


def test_a_long_drift_summary_is_cut_on_the_list(admin_client):
    many = [{"field": f"field_{n}", "count": 1, "share": 0.5} for n in range(10)]
    RunFactory(drift={"items": 2, "added": many})

    (summary,) = column(admin_client.get(RUNS), "drift_summary")

    assert len(summary) == 80
    assert summary.startswith("added: field_0 in 1 of 2 items (50%); added: field_1")
    assert summary.endswith("…")


def test_the_rejected_count_leads_to_exactly_that_runs_rejections(admin_client):
    rejecting = RunFactory(source="csv", records_rejected=2)
    other = RunFactory(source="csv", records_rejected=1)
    clean = RunFactory(source="csv", records_rejected=0)
    mine = {RejectionFactory(run=rejecting).pk, RejectionFactory(run=rejecting).pk}
    RejectionFactory(run=other)
    listing = admin_client.get(RUNS)
    rows = {
        row["id"]: (row, links)
        for row, links in zip(result_rows(listing), result_links(listing), strict=True)
    }
    (shown, links), (clean_shown, clean_links) = rows[str(rejecting.pk)], rows[str(clean.pk)]

    rejections = admin_client.get(links["rejected"])

    assert shown["rejected"] == "2"
    assert clean_shown["rejected"] == "0"
    assert "rejected" not in clean_links
    assert {int(pk) for pk in column(rejections, "id")} == mine
    # The list says it is filtered, by which run, and clears back to every rejection.
    assert selected_filter_choice(rejections, "run") == str(rejecting)
    clear = page(rejections).find(id="changelist-filter-extra-actions").find_all("a")[-1]
    assert len(column(admin_client.get(REJECTIONS + clear.attrs["href"]), "id")) == 3


def test_the_run_page_links_its_rejections_too(admin_client):
    run = RunFactory(records_rejected=1)
    wanted = RejectionFactory(run=run)
    RejectionFactory()
    detail = admin_client.get(reverse("admin:runs_run_change", args=[run.pk]))

    rejections = admin_client.get(readonly_field(detail, "rejected").href())

    assert column(rejections, "id") == [str(wanted.pk)]


@pytest.mark.parametrize(
    ("title", "choice", "listed"),
    [
        ("source", "coingecko", {"failed api"}),
        ("status", "Failed", {"failed api"}),
        ("status", "Succeeded", {"csv", "old renormalize"}),
        ("trigger", "Api", {"failed api"}),
        ("kind", "renormalize (quotes rebuilt from raw units)", {"old renormalize"}),
        ("started at", "Past 7 days", {"csv", "failed api"}),
    ],
)
def test_each_sidebar_filter_narrows_the_run_list(admin_client, title, choice, listed):
    now = timezone.now()
    runs = {
        "csv": RunFactory(source="csv", started_at=now - timedelta(hours=1)),
        "failed api": RunFactory(
            source="coingecko",
            status=Run.Status.FAILED,
            trigger=Run.Trigger.API,
            started_at=now - timedelta(hours=2),
            error="down",
        ),
        "old renormalize": RunFactory(
            source="csv", kind=Run.Kind.RENORMALIZE, started_at=now - timedelta(days=400)
        ),
    }
    names = {str(run.pk): name for name, run in runs.items()}

    query = filter_choices(admin_client.get(RUNS), title)[choice]
    shown = column(admin_client.get(RUNS + query), "id")

    assert {names[pk] for pk in shown} == listed


def test_runs_are_found_by_their_error(admin_client):
    wanted = RunFactory(status=Run.Status.FAILED, error="disk full\nTraceback ...")
    RunFactory(status=Run.Status.FAILED, error="connection reset")

    assert column(admin_client.get(RUNS, {"q": "disk full"}), "id") == [str(wanted.pk)]


def test_the_run_page_shows_its_counts_duration_drift_and_checkpoint_after(admin_client):
    start = datetime(2024, 3, 1, 12, tzinfo=UTC)
    run = RunFactory(
        status=Run.Status.PARTIAL,
        started_at=start,
        finished_at=start + timedelta(seconds=3.25),
        records_read=1500,
        records_inserted=1200,
        records_updated=250,
        records_unchanged=40,
        records_rejected=10,
        drift=DRIFT,
        checkpoint_after={"file": "coin_Bitcoin.csv", "line": 1500},
    )

    response = admin_client.get(reverse("admin:runs_run_change", args=[run.pk]))

    assert fieldset_fields(response, "Records") == ["read", "new", "updated", "same", "rejected"]
    shown = {
        name: readonly_field(response, name).text()
        for name in ("read", "new", "updated", "same", "rejected", "duration_text", "status_badge")
    }
    assert shown == {
        "read": "1,500",
        "new": "1,200",
        "updated": "250",
        "same": "40",
        "rejected": "10",
        "duration_text": "3.25 s",
        "status_badge": "partial",
    }
    drift = readonly_field(response, "drift_details")
    assert [li.text() for li in drift.find_all("li")] == [
        "2 change(s) in 250 items",
        "added: roi in 250 of 250 items (100%)",
        "missing (required): market_cap in 25 of 250 items (10%)",
    ]
    after = readonly_field(response, "checkpoint_after_table")
    assert [(tr.find("th").text(), tr.find("td").text()) for tr in after.find_all("tr")] == [
        ("file", "coin_Bitcoin.csv"),
        ("line", "1500"),
    ]
    assert readonly_field(response, "checkpoint_before_table").text() == "-"


def test_the_run_page_shows_the_error_whole_and_says_when_drift_was_not_checked(admin_client):
    run = RunFactory(status=Run.Status.FAILED, error="Traceback (most recent call last):\n  boom")

    response = admin_client.get(reverse("admin:runs_run_change", args=[run.pk]))

    error = readonly_field(response, "error_text").find("pre")
    assert "".join(error.children) == "Traceback (most recent call last):\n  boom"
    assert readonly_field(response, "drift_details").text() == (
        "not checked (this source has no expected schema)"
    )


def test_runs_can_be_viewed_but_not_added_changed_or_deleted(admin_client):
    run = RunFactory(error="")
    add = reverse("admin:runs_run_add")

    listing = page(admin_client.get(RUNS))
    detail = admin_client.get(reverse("admin:runs_run_change", args=[run.pk]))
    changed = admin_client.post(reverse("admin:runs_run_change", args=[run.pk]), {"error": "x"})
    deleted = admin_client.post(reverse("admin:runs_run_delete", args=[run.pk]), {"post": "yes"})

    assert listing.find("a", href=add) is None
    assert listing.find("select", name="action") is None
    assert page(detail).find("input", name="_save") is None
    assert (changed.status_code, deleted.status_code) == (403, 403)
    assert admin_client.get(add).status_code == 403
    run.refresh_from_db()
    assert run.error == ""


def test_checkpoint_list_shows_each_sources_cursor_and_the_run_that_moved_it(admin_client):
    run = RunFactory(source="coingecko")
    Checkpoint.objects.create(source="csv", cursor={"file": "coin_Bitcoin.csv", "line": 1200})
    Checkpoint.objects.create(source="coingecko", cursor={"page": 3}, run=run)
    Checkpoint.objects.create(source="coincap", cursor={"ids": ["x" * 40, "y" * 40]})

    rows = result_rows(admin_client.get(CHECKPOINTS))

    assert [(r["source"], r["position"], r["run"]) for r in rows] == [
        ("coincap", f"ids={['x' * 40, 'y' * 40]}"[:79] + "…", "-"),
        ("coingecko", "page=3", str(run)),
        ("csv", "file=coin_Bitcoin.csv, line=1200", "-"),
    ]


def test_the_checkpoint_page_shows_its_cursor_as_a_table(admin_client):
    run = RunFactory()
    checkpoint = Checkpoint.objects.create(
        source="csv", cursor={"file": "coin_Bitcoin.csv", "line": 1200}, run=run
    )

    response = admin_client.get(reverse("admin:runs_checkpoint_change", args=[checkpoint.pk]))

    cursor = readonly_field(response, "cursor_table")
    assert [(tr.find("th").text(), tr.find("td").text()) for tr in cursor.find_all("tr")] == [
        ("file", "coin_Bitcoin.csv"),
        ("line", "1200"),
    ]
    assert readonly_field(response, "run").href() == reverse("admin:runs_run_change", args=[run.pk])


def test_deleting_a_checkpoint_is_how_an_operator_restarts_a_source(admin_client):
    checkpoint = Checkpoint.objects.create(source="csv", cursor={"line": 1200})
    Checkpoint.objects.create(source="coingecko", cursor={"page": 3})

    done = admin_client.post(
        reverse("admin:runs_checkpoint_delete", args=[checkpoint.pk]), {"post": "yes"}, follow=True
    )

    assert not Checkpoint.objects.filter(pk=checkpoint.pk).exists()
    assert column(done, "source") == ["coingecko"]
    assert ("success", "The checkpoint “checkpoint csv” was deleted successfully.") in messages(
        done
    )
    assert admin_client.get(reverse("admin:runs_checkpoint_add")).status_code == 403
