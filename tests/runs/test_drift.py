"""Schema drift detection: the report a run stores, and how the admin shows it."""

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.drift import FieldTally, detect_drift, spec, summarize
from tests.factories import RunFactory

SCHEMA = {
    "id": spec("string", required=True),
    "price": spec("number", required=True),
    "cap": spec("number"),
    "note": spec("string", optional=True),
    "quote": spec("object"),
    "quote.USD": spec("object"),
    "quote.USD.price": spec("number", required=True),
    "extra": spec("object"),
}


def row(**changes):
    base = {
        "id": "bitcoin",
        "price": 1.5,
        "cap": 10,
        "note": "x",
        "quote": {"USD": {"price": 1.5}},
        "extra": {"anything": 1},
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not ...}


def report_for(rows):
    tally = FieldTally()
    tally.add_all(rows, schema=SCHEMA)
    return detect_drift(tally=tally, schema=SCHEMA)


def test_rows_as_expected_have_no_drift():
    report = report_for([row(), row(note=...), row(cap=None), row(cap="")])

    assert not report.has_drift
    assert report.as_json() == {"items": 4, "added": [], "missing": [], "type_changes": []}
    assert report.summary() == "no drift in 4 items"


def test_added_field_is_reported_with_its_share():
    report = report_for([row(new=1), row(), row(), row(new=None)])

    assert report.added == [{"field": "new", "count": 2, "share": 0.5}]
    assert not report.removed_required


def test_keys_inside_an_undescribed_object_are_not_drift():
    report = report_for([row(extra={"other": "key"}), row(extra=None)])

    assert not report.has_drift


def test_missing_field_reports_share_and_whether_it_is_required():
    report = report_for([row(cap=...), row(cap=...), row(), row(price=...)])

    assert report.missing == [
        {"field": "price", "count": 1, "share": 0.25, "required": True},
        {"field": "cap", "count": 2, "share": 0.5, "required": False},
    ]
    # One item without a price is that item's problem (it is rejected), not a removed field.
    assert report.removed_required == []


def test_required_field_absent_from_every_item_is_removed():
    report = report_for([row(price=...), row(price=...)])

    assert report.removed_required == ["price"]


def test_number_turned_string_is_a_type_change_with_its_share():
    report = report_for([row(price="1.5"), row(price="2"), row(), row()])

    assert report.type_changes == [
        {
            "field": "price",
            "expected": ["number"],
            "seen": {"string": 2},
            "count": 2,
            "share": 0.5,
        }
    ]


def test_nested_fields_are_compared_by_path():
    report = report_for([row(quote={"USD": {"cost": 1.5}}), row(quote={"USD": {"cost": 2}})])

    assert report.added == [{"field": "quote.USD.cost", "count": 2, "share": 1.0}]
    assert report.removed_required == ["quote.USD.price"]


def test_a_missing_parent_is_reported_once_not_for_each_child():
    report = report_for([row(quote=...), row(quote=...)])

    assert [entry["field"] for entry in report.missing] == ["quote"]


def test_summary_reads_as_a_sentence():
    report = report_for([row(new=1, price="1")])

    assert report.summary() == (
        "2 change(s) in 1 items: added: new in 1 of 1 items (100%); "
        "type changed: price expected number, got string x1 (100%)"
    )
    assert summarize({}) == "not checked (this source has no expected schema)"


@pytest.mark.django_db
def test_admin_shows_the_drift_of_a_run(admin_client):
    report = report_for([row(new=1, price="1", cap=...), row(new=2, cap=...)])
    # started_at is given because the factory's finished_at is computed from it.
    run = RunFactory(source="coingecko", started_at=timezone.now(), drift=report.as_json())
    RunFactory(source="coinpaprika", started_at=timezone.now(), drift=report_for([row()]).as_json())
    unchecked = RunFactory(source="csv", started_at=timezone.now())

    detail = admin_client.get(reverse("admin:runs_run_change", args=[run.pk])).content.decode()
    listing = admin_client.get(reverse("admin:runs_run_changelist")).content.decode()

    assert "<li>3 change(s) in 2 items</li>" in detail
    assert "<li>added: new in 2 of 2 items (100%)</li>" in detail
    assert "<li>missing: cap in 2 of 2 items (100%)</li>" in detail
    assert "<li>type changed: price expected number, got string x1 (50%)</li>" in detail
    assert "added: new in 2 of 2 items (100%); missing: cap" in listing
    assert "no drift in 1 items" in listing
    csv_page = admin_client.get(reverse("admin:runs_run_change", args=[unchecked.pk]))
    assert "not checked (this source has no expected schema)" in csv_page.content.decode()
