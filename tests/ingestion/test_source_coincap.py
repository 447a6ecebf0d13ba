"""CoinCap v3 runs end to end against a local server serving recorded /v3/assets bodies."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ingestion.models import RawUnit
from ingestion.pipeline import ingest
from ingestion.sources import build_source
from runs.models import Run
from tests.conftest import stored
from tests.provider_helpers import (
    COINCAP_PATH,
    COINCAP_TIMESTAMP,
    SECRET,
    coincap_body,
    coincap_rows,
    json_response,
    load,
    quotes_by_provider_id,
    requests_to,
    serve_by_param,
    stored_counts,
    use_local_providers,
)

pytestmark = pytest.mark.django_db

ASSETS = f"{COINCAP_PATH}/assets"
CAPTURED_AT = datetime(2025, 8, 11, 18, 45, 25, 536000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def local_providers(settings, httpserver):
    use_local_providers(settings, httpserver)


def serve(httpserver, body, *, status=200):
    httpserver.expect_request(
        ASSETS, headers={"Authorization": f"Bearer {SECRET}"}
    ).respond_with_response(json_response(body, status=status))


def test_string_numbers_become_exact_quotes_at_the_response_time(httpserver):
    serve(httpserver, coincap_body(coincap_rows(1)))

    run = ingest(source="coincap")

    assert run.status == Run.Status.SUCCEEDED
    bitcoin = quotes_by_provider_id("coincap")["bitcoin"]
    assert bitcoin.price_usd == stored("119753.3173109070855685")
    assert bitcoin.market_cap_usd == stored("2383681877354.6630183733449790")
    assert bitcoin.volume_24h_usd == stored("26076222906.8617342709921743")
    assert bitcoin.percent_change_24h == Decimal("1.0278288571")
    assert bitcoin.observed_at == CAPTURED_AT
    # The page kept as received rebuilds the observation, with the response's time.
    unit = RawUnit.objects.get(source="coincap")
    assert json.loads(unit.data())["timestamp"] == COINCAP_TIMESTAMP
    source = build_source("coincap")
    [item] = source.replay(data=unit.data(), context=unit.context, line_start=None, file_name="")
    assert source.normalize(item.payload).observed_at == CAPTURED_AT
    request = requests_to(httpserver, ASSETS)[0]
    assert (request.args["limit"], request.args["offset"]) == ("2000", "0")


def test_v2_shutdown_body_is_a_clear_error(httpserver):
    serve(httpserver, load("coincap_v2_deprecation_notice_2025-04-16.json"))

    run = ingest(source="coincap")

    assert run.status == Run.Status.FAILED
    assert "CoinCap: /assets page 1: `data` is an object, not a list of assets" in run.error
    assert "We are deprecating this version of the CoinCap API" in run.error
    assert "use the v3 base URL https://rest.coincap.io/v3" in run.error
    assert stored_counts("coincap") == (0, 0)


def test_missing_key_fails_before_any_request(settings, httpserver):
    settings.COINCAP_API_KEY = ""

    run = ingest(source="coincap")

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("CoinCap is misconfigured: COINCAP_API_KEY is not set")
    assert len(httpserver.log) == 0


def test_v2_base_url_is_refused(settings, httpserver):
    settings.COINCAP_BASE_URL = "https://api.coincap.io/v2"

    run = ingest(source="coincap")

    assert run.status == Run.Status.FAILED
    assert "the v2 API that was shut down" in run.error


def test_401_for_a_bad_key_fails_the_run(httpserver):
    serve(httpserver, {"error": "Invalid API key", "timestamp": COINCAP_TIMESTAMP}, status=401)

    run = ingest(source="coincap")

    assert run.status == Run.Status.FAILED
    assert "refused (HTTP 401): error 'Invalid API key'" in run.error
    assert "COINCAP_API_KEY is set but was not accepted" in run.error
    assert SECRET not in run.error


def test_unchanged_rows_under_a_new_timestamp_are_new_observations_but_no_new_raw(httpserver):
    serve(httpserver, coincap_body(coincap_rows(3)))
    ingest(source="coincap")
    httpserver.clear_all_handlers()
    serve(httpserver, coincap_body(coincap_rows(3), timestamp=COINCAP_TIMESTAMP + 60_000))

    again = ingest(source="coincap")

    assert (again.records_read, again.records_inserted, again.records_unchanged) == (3, 3, 0)
    assert stored_counts("coincap") == (6, 2)


def test_a_changed_row_adds_an_observation_at_the_new_timestamp(httpserver):
    serve(httpserver, coincap_body(coincap_rows(3)))
    ingest(source="coincap")
    rows = coincap_rows(3)
    rows[0]["priceUsd"] = "119800.0000000000000000"
    httpserver.clear_all_handlers()
    serve(httpserver, coincap_body(rows, timestamp=COINCAP_TIMESTAMP + 60_000))

    run = ingest(source="coincap")

    assert (run.records_inserted, run.records_unchanged) == (3, 0)
    assert stored_counts("coincap") == (6, 2)
    latest = RawUnit.objects.order_by("-id").first()
    assert json.loads(latest.data())["timestamp"] == COINCAP_TIMESTAMP + 60_000


def test_pages_use_limit_and_offset(settings, httpserver):
    settings.COINCAP_MAX_ASSETS = 2003
    rows = coincap_rows(2003)
    serve_by_param(
        httpserver,
        ASSETS,
        param="offset",
        responses={
            "0": lambda: json_response(coincap_body(rows[:2000])),
            # A row that moved down between requests shows up again; it is read once.
            "2000": lambda: json_response(coincap_body([rows[1999], *rows[2000:]])),
        },
    )

    run = ingest(source="coincap")

    assert run.status == Run.Status.SUCCEEDED
    pages = [(r.args["limit"], r.args["offset"]) for r in requests_to(httpserver, ASSETS)]
    assert pages == [("2000", "0"), ("3", "2000")]
    assert stored_counts("coincap") == (2003, 2)


def test_rank_as_a_number_is_accepted_and_a_number_price_is_type_drift(httpserver):
    rows = coincap_rows(2)
    rows[0]["rank"] = 1
    rows[1]["priceUsd"] = 119753.31
    serve(httpserver, coincap_body(rows))

    run = ingest(source="coincap")

    assert run.status == Run.Status.SUCCEEDED
    assert [change["field"] for change in run.drift["type_changes"]] == ["priceUsd"]
    assert run.drift["type_changes"][0]["share"] == 0.5


def test_response_without_timestamp_is_an_error(httpserver):
    serve(httpserver, {"data": coincap_rows(1)})

    run = ingest(source="coincap")

    assert run.status == Run.Status.FAILED
    assert "the response has no valid timestamp (None)" in run.error
    assert stored_counts("coincap") == (0, 0)


def test_empty_first_page_fails_the_run_saying_why(httpserver):
    serve(httpserver, coincap_body([]))

    run = ingest(source="coincap")

    assert run.status == Run.Status.FAILED
    assert run.records_read == 0
    assert "CoinCap: /assets page 1 has an empty `data` list" in run.error
    assert stored_counts("coincap") == (0, 0)


def test_empty_later_page_is_the_end_of_the_list(settings, httpserver, monkeypatch):
    monkeypatch.setattr("ingestion.sources.coincap.PAGE_LIMIT", 2)
    settings.COINCAP_MAX_ASSETS = 10
    rows = coincap_rows(2)
    serve_by_param(
        httpserver,
        ASSETS,
        param="offset",
        responses={
            "0": lambda: json_response(coincap_body(rows)),
            "2": lambda: json_response(coincap_body([])),
        },
    )

    run = ingest(source="coincap")

    assert run.status == Run.Status.SUCCEEDED
    pages = [(r.args["limit"], r.args["offset"]) for r in requests_to(httpserver, ASSETS)]
    assert pages == [("2", "0"), ("2", "2")]
    assert stored_counts("coincap") == (2, 2)
