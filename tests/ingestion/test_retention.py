"""Retention: `prune_raw` deletes raw units older than RAW_RETENTION_DAYS; quotes and rejections
stay, and it is scheduled only when a retention is configured."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from ingestion import retention
from ingestion.models import RawUnit, Rejection
from prices.models import Quote
from tests.factories import QuoteFactory, RawUnitFactory, RejectionFactory
from tests.ingestion.test_crontab import cronjobs_with

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


@pytest.fixture
def old_and_new():
    old = RawUnitFactory(fetched_at=NOW - timedelta(days=40), size=1000)
    new = RawUnitFactory(fetched_at=NOW - timedelta(days=5), size=10)
    quote = QuoteFactory(raw_unit=old, raw_position=2)
    rejection = RejectionFactory(raw_unit=old, run=old.run)
    return old, new, quote, rejection


def prune(*args: str, **options) -> str:
    out = StringIO()
    call_command("prune_raw", *args, stdout=out, **options)
    return out.getvalue()


def test_old_units_go_and_quotes_and_rejections_stay(settings, old_and_new, monkeypatch):
    old, new, quote, rejection = old_and_new
    settings.RAW_RETENTION_DAYS = 30
    monkeypatch.setattr(retention, "DELETE_BATCH", 1)
    RawUnitFactory(fetched_at=NOW - timedelta(days=31), size=5)

    said = prune()

    assert list(RawUnit.objects.values_list("pk", flat=True)) == [new.pk]
    assert "deleted 2 raw units (1,005 bytes as received)" in said
    kept = Quote.objects.get()
    assert (kept.price_usd, kept.raw_unit_id, kept.raw_position) == (
        quote.price_usd,
        old.pk,
        2,
    )
    survivor = Rejection.objects.get()
    assert (survivor.reason, survivor.location, survivor.raw_unit_id) == (
        rejection.reason,
        rejection.location,
        None,
    )


def test_dry_run_deletes_nothing(settings, old_and_new):
    settings.RAW_RETENTION_DAYS = 30

    said = prune("--dry-run")

    assert "would delete 1 raw units (1,000 bytes as received)" in said
    assert RawUnit.objects.count() == 2


def test_days_option_overrides_the_setting(settings, old_and_new):
    settings.RAW_RETENTION_DAYS = 60

    prune("--days", "3")

    assert not RawUnit.objects.exists()


def test_without_a_retention_nothing_is_deleted(settings, old_and_new):
    settings.RAW_RETENTION_DAYS = None

    said = prune()

    assert "no retention configured" in said
    assert RawUnit.objects.count() == 2


def test_the_prune_job_is_scheduled_only_with_a_retention():
    jobs = [job[1] for job in cronjobs_with(RAW_RETENTION_DAYS="90")]
    assert "ingestion.cron.prune_job" in jobs
    assert "ingestion.cron.prune_job" not in [job[1] for job in cronjobs_with()]


@pytest.mark.parametrize("value", ["0", "-3", "a week"])
def test_a_bad_retention_value_is_refused_naming_it(value):
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import retention_days

    with pytest.raises(ImproperlyConfigured, match="RAW_RETENTION_DAYS"):
        retention_days(value)
