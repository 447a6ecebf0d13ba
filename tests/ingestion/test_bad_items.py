"""Bad items cost themselves only, and what is stored is the last value received.

One malformed row, a date that overflows, a NUL, a NaN, a 5,000-digit number, a line of
megabytes, a future date or a contradiction inside one page is a rejection with its reason; the
items around it load, run after run.
"""

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from ingestion.models import RawUnit, Rejection
from ingestion.pipeline import ingest
from ingestion.sources.csvfile import MAX_LINE_BYTES
from prices.models import Quote
from runs.models import Run
from tests.conftest import FIXTURES, stored
from tests.provider_helpers import (
    COINGECKO_PATH,
    SECRET,
    coingecko_rows,
    json_response,
    raw_response,
    use_local_providers,
)

pytestmark = pytest.mark.django_db

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"
HEADER = "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap\n"
MARKETS = f"{COINGECKO_PATH}/coins/markets"


def kaggle_row(n: int, *, date: str | None = None, close: str = "10", name: str = "Ethereum"):
    date = date or (datetime(2016, 1, 1) + timedelta(days=n)).strftime("%Y-%m-%d 23:59:59")
    return f"{n},{name},ETH,{date},12,9,10,{close},1000,50000\n"


def rejections(source: str = "csv") -> dict[str, str]:
    return dict(Rejection.objects.filter(source=source).values_list("location", "reason"))


# --- the last value received wins -----------------------------------------------------------


def test_csv_value_corrected_back_to_its_first_value_ends_at_it(write_csv):
    path = write_csv(HEADER + kaggle_row(1, close="10"))
    ingest(source="csv", path=str(path))
    path.write_text(HEADER + kaggle_row(1, close="99"))
    ingest(source="csv", path=str(path))

    path.write_text(HEADER + kaggle_row(1, close="10") + kaggle_row(2))
    run = ingest(source="csv", path=str(path))

    assert (run.records_inserted, run.records_updated, run.records_unchanged) == (1, 1, 0)
    assert Quote.objects.order_by("observed_at").first().price_usd == stored("10")


def test_api_price_going_a_b_a_at_one_time_ends_at_a(settings, httpserver):
    use_local_providers(settings, httpserver)
    first = coingecko_rows(1)
    changed = json.loads(json.dumps(first))
    changed[0]["current_price"] = 99999
    for body in (first, changed, first):
        httpserver.clear()
        httpserver.expect_request(MARKETS).respond_with_response(json_response(body))
        run = ingest(source="coingecko")

    assert run.records_updated == 1
    assert Quote.objects.get(source="coingecko").price_usd == stored("16730.75")


# --- times that would be a wrong answer -------------------------------------------------------


def test_future_and_prehistoric_dates_are_rejected_with_their_reason(write_csv):
    soon = (timezone.now() + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S")
    path = write_csv(
        HEADER
        + kaggle_row(1, date="2999-01-01 00:00:00")
        + kaggle_row(2, date="2008-12-31 00:00:00")
        + kaggle_row(3, date=soon)  # within the allowed clock skew
        + kaggle_row(4)
    )

    run = ingest(source="csv", path=str(path))

    assert (run.status, run.records_inserted, run.records_rejected) == ("partial", 2, 2)
    reasons = rejections()
    assert "in the future" in reasons[f"{path.name}:2"]
    assert "before 2009-01-03" in reasons[f"{path.name}:3"]
    latest = Quote.objects.order_by("-observed_at").first()
    assert latest.observed_at < timezone.now() + timedelta(minutes=10)


def test_future_skew_is_configurable(settings, write_csv):
    settings.ETL_MAX_FUTURE_SKEW_SECONDS = 0
    soon = (timezone.now() + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S")
    path = write_csv(HEADER + kaggle_row(1, date=soon))

    run = ingest(source="csv", path=str(path))

    assert (run.records_inserted, run.records_rejected) == (0, 1)


# --- contradictions inside one page -----------------------------------------------------------


def test_same_id_twice_in_a_page_with_other_values_is_a_rejection(settings, httpserver):
    use_local_providers(settings, httpserver)
    rows = coingecko_rows(3)
    twin = json.loads(json.dumps(rows[0]))
    twin["current_price"] = 1
    rows.append(twin)
    rows.append(json.loads(json.dumps(rows[1])))  # an exact repeat says nothing new
    httpserver.expect_request(MARKETS).respond_with_response(json_response(rows))

    run = ingest(source="coingecko")

    assert (run.status, run.records_inserted, run.records_rejected) == ("partial", 3, 1)
    [(where, reason)] = rejections("coingecko").items()
    assert where.startswith("bitcoin")
    assert "appears again in this page" in reason
    assert Quote.objects.get(source="coingecko", asset__slug="bitcoin").price_usd == stored(
        "16730.75"
    )


# --- one bad item never blocks a source -------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        (kaggle_row(3, date="0001-01-01T00:00:00+01:00"), "out of range"),
        (kaggle_row(3, name="Ether\x00eum"), "NUL"),
        (kaggle_row(3, close="1" * 5000), "too large"),
        (kaggle_row(3, close="0." + "0" * 5000 + "1"), "below"),
        (kaggle_row(3, name="x" * (MAX_LINE_BYTES + 10)), "longer than"),
        (kaggle_row(3, name="x" * (MAX_LINE_BYTES * 60)), "longer than"),
    ],
    ids=["overflowing-date", "nul-in-name", "5000-digit", "5000-places", "long-line", "4MB-line"],
)
def test_a_bad_csv_row_costs_only_itself_run_after_run(write_csv, bad_row, reason):
    rows = [kaggle_row(n) for n in range(1, 6)]
    rows[2] = bad_row
    path = write_csv(HEADER + "".join(rows))

    run = ingest(source="csv", path=str(path))

    assert run.status == Run.Status.PARTIAL, run.error
    assert (run.records_inserted, run.records_rejected) == (4, 1)
    [(where, why)] = rejections().items()
    assert where == f"{path.name}:4"
    assert reason in why
    assert len(why) <= 1000
    # The next run goes on from there: nothing is read again, nothing is stuck.
    with path.open("a") as handle:
        handle.write(kaggle_row(6))
    again = ingest(source="csv", path=str(path))
    assert (again.status, again.records_read, again.records_inserted) == ("succeeded", 1, 1)


def test_a_bad_date_deep_in_a_large_file_loses_no_valid_row(settings, write_csv):
    settings.ETL_BATCH_SIZE = 1000
    rows = [kaggle_row(n) for n in range(1, 3001)]
    rows[2000] = kaggle_row(2001, date="0001-01-01T00:00:00+01:00")
    path = write_csv(HEADER + "".join(rows))

    run = ingest(source="csv", path=str(path))

    assert (run.status, run.records_inserted, run.records_rejected) == ("partial", 2999, 1)


@pytest.mark.parametrize(
    ("field", "literal", "reason"),
    [
        ("current_price", "NaN", "missing"),
        ("current_price", "Infinity", "not a finite number"),
        ("current_price", "1" * 5000, "too large"),
        ("current_price", "1e5000", "too large"),
        ("name", '"Bit\\u0000coin"', "NUL"),
        ("symbol", '"b\\u0000tc"', "NUL"),
        ("last_updated", '"0001-01-01T00:00:00+01:00"', "out of range"),
    ],
)
def test_a_bad_provider_item_costs_only_itself(settings, httpserver, field, literal, reason):
    use_local_providers(settings, httpserver)
    rows = coingecko_rows(3)
    rows[0][field] = "@@bad@@"
    body = json.dumps(rows).replace('"@@bad@@"', literal)
    httpserver.expect_request(MARKETS).respond_with_response(
        raw_response(body, status=200, content_type="application/json")
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.PARTIAL, run.error
    assert (run.records_inserted, run.records_rejected) == (2, 1)
    [(where, why)] = rejections("coingecko").items()
    assert where == "bitcoin"
    assert reason in why


def test_a_market_cap_of_nan_leaves_the_price(settings, httpserver):
    use_local_providers(settings, httpserver)
    rows = coingecko_rows(1)
    rows[0]["market_cap"] = "@@bad@@"
    body = json.dumps(rows).replace('"@@bad@@"', "NaN")
    httpserver.expect_request(MARKETS).respond_with_response(
        raw_response(body, status=200, content_type="application/json")
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    quote = Quote.objects.get(source="coingecko")
    assert (quote.price_usd, quote.market_cap_usd) == (stored("16730.75"), None)


# --- files that are not what they seem --------------------------------------------------------


def test_utf16_file_fails_saying_so(write_csv):
    path = write_csv(KAGGLE.read_text().encode("utf-16"))

    run = ingest(source="csv", path=str(path))

    assert run.status == Run.Status.FAILED
    assert "UTF-16" in run.error
    assert str(path) in run.error


def test_latin1_file_fails_naming_the_line(write_csv):
    path = write_csv((HEADER + kaggle_row(1) + kaggle_row(2, name="Éther")).encode("latin-1"))

    run = ingest(source="csv", path=str(path))

    assert run.status == Run.Status.FAILED
    assert f"{path}: line 3" in run.error
    assert "not UTF-8" in run.error


# --- keys never reach the raw data -------------------------------------------------------------


def test_a_key_echoed_in_a_body_is_not_stored(settings, httpserver):
    use_local_providers(settings, httpserver)
    settings.COINGECKO_API_KEY = SECRET
    settings.COINGECKO_API_PLAN = "demo"
    rows = coingecko_rows(1)
    rows[0]["note"] = f"your key is {SECRET}"
    httpserver.expect_request(MARKETS).respond_with_response(json_response(rows))

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED, run.error
    [payload] = json.loads(RawUnit.objects.get(source="coingecko").data())
    assert payload["note"] == "your key is ***"
    assert SECRET.encode() not in RawUnit.objects.get().data()


def test_rejected_times_are_rejected_in_utc(write_csv):
    # 2009-01-03T00:30+01:00 is 2009-01-02T23:30 UTC: before the first block.
    path = write_csv(HEADER + kaggle_row(1, date="2009-01-03T00:30:00+01:00"))

    run = ingest(source="csv", path=str(path))

    assert run.records_rejected == 1
    assert "before 2009-01-03" in rejections()[f"{path.name}:2"]
