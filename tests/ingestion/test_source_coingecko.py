"""CoinGecko runs end to end against a local server serving recorded /coins/markets bodies."""

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ingestion.models import RawUnit
from ingestion.pipeline import ingest
from ingestion.sources.coingecko import PRO_BASE_URL, CoinGeckoSource
from prices.models import Quote
from runs.models import Run
from tests.conftest import stored
from tests.provider_helpers import (
    COINGECKO_PATH,
    SECRET,
    coingecko_rows,
    fixture_path,
    json_response,
    quotes_by_provider_id,
    raw_response,
    rejections,
    requests_to,
    serve_by_param,
    stored_counts,
    stored_payloads,
    use_local_providers,
)

pytestmark = pytest.mark.django_db

MARKETS = f"{COINGECKO_PATH}/coins/markets"


@pytest.fixture(autouse=True)
def local_providers(settings, httpserver):
    use_local_providers(settings, httpserver)


def serve(httpserver, body, **kwargs):
    httpserver.expect_request(MARKETS).respond_with_response(json_response(body, **kwargs))


def test_real_response_becomes_exact_quotes_at_each_rows_own_time(httpserver):
    serve(httpserver, coingecko_rows(5))

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    assert (run.records_read, run.records_inserted) == (5, 5)
    quotes = quotes_by_provider_id("coingecko")
    assert set(quotes) == {"bitcoin", "ethereum", "tether", "usd-coin", "binancecoin"}
    bitcoin = quotes["bitcoin"]
    assert bitcoin.price_usd == stored("16730.75")
    assert bitcoin.market_cap_usd == stored("322053364166")
    assert bitcoin.volume_24h_usd == stored("12892500366")
    assert bitcoin.percent_change_24h == Decimal("0.96122")
    assert bitcoin.observed_at == datetime(2023, 1, 2, 17, 8, 13, 102000, tzinfo=UTC)
    # Rows of one response keep their own times, not the fetch time.
    assert quotes["tether"].observed_at == datetime(2023, 1, 2, 17, 5, 28, 879000, tzinfo=UTC)
    # The page is kept as received, with the request that fetched it.
    unit = RawUnit.objects.get(source="coingecko")
    assert json.loads(unit.data()) == coingecko_rows(5)
    assert "page=1" in unit.url and unit.kind == "page"
    assert Quote.objects.get(asset__slug="bitcoin").raw_position == 1
    request = requests_to(httpserver, MARKETS)[0]
    assert request.args["vs_currency"] == "usd"
    assert request.args["per_page"] == "250"


def test_pages_are_read_until_a_short_page_and_a_coin_on_two_pages_is_one_quote(
    settings, httpserver
):
    settings.COINGECKO_MAX_COINS = 1000
    page1 = coingecko_rows(250)
    # Ranks moved between requests: page 2 starts with the last coin of page 1 again.
    page2 = [page1[-1], *coingecko_rows(3, start=250)]
    serve_by_param(
        httpserver,
        MARKETS,
        param="page",
        responses={"1": lambda: json_response(page1), "2": lambda: json_response(page2)},
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    assert [r.args["page"] for r in requests_to(httpserver, MARKETS)] == ["1", "2"]
    assert (run.records_read, run.records_inserted, run.records_unchanged) == (254, 253, 1)
    assert stored_counts("coingecko") == (253, 2)
    assert run.checkpoint_after["page"] == 2


def test_pages_stop_at_the_configured_number_of_coins(settings, httpserver):
    settings.COINGECKO_MAX_COINS = 300
    serve_by_param(
        httpserver,
        MARKETS,
        param="page",
        responses={
            "1": lambda: json_response(coingecko_rows(250)),
            "2": lambda: json_response(coingecko_rows(250, start=250)),
        },
    )

    run = ingest(source="coingecko")

    assert len(requests_to(httpserver, MARKETS)) == 2
    assert run.records_inserted == 300


def test_rerun_over_the_same_response_adds_nothing(httpserver):
    serve(httpserver, coingecko_rows(5))
    ingest(source="coingecko")

    again = ingest(source="coingecko")

    assert again.status == Run.Status.SUCCEEDED
    assert (again.records_read, again.records_inserted, again.records_unchanged) == (5, 0, 5)
    assert stored_counts("coingecko") == (5, 1)


def test_a_changed_coin_adds_one_observation(httpserver):
    rows = coingecko_rows(5)
    serve(httpserver, rows)
    ingest(source="coingecko")
    rows[0] = {**rows[0], "current_price": 16800.5, "last_updated": "2023-01-02T17:10:01.000Z"}
    httpserver.clear_all_handlers()
    serve(httpserver, rows)

    run = ingest(source="coingecko")

    assert (run.records_inserted, run.records_unchanged) == (1, 4)
    assert stored_counts("coingecko") == (6, 2)
    latest = RawUnit.objects.order_by("-id").first()
    assert json.loads(latest.data())[0]["current_price"] == 16800.5


def test_429_with_retry_after_then_success(httpserver, caplog):
    body = fixture_path("coingecko_429_rate_limit_body_2022-09-29.json").read_bytes()
    httpserver.expect_oneshot_request(MARKETS).respond_with_response(
        raw_response(
            body, status=429, content_type="application/json", headers={"retry-after": "119"}
        )
    )
    serve(httpserver, coingecko_rows(5))

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    assert run.records_inserted == 5
    assert "Retry-After 119 s" in caplog.text


def test_429_outlasting_retries_fails_the_run_and_keeps_committed_pages(settings, httpserver):
    settings.COINGECKO_MAX_COINS = 500
    settings.ETL_BATCH_SIZE = 250
    body = fixture_path("coingecko_429_rate_limit_body_2022-09-29.json").read_bytes()
    serve_by_param(
        httpserver,
        MARKETS,
        param="page",
        responses={
            "1": lambda: json_response(coingecko_rows(250)),
            "2": lambda: raw_response(body, status=429, content_type="application/json"),
        },
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("CoinGecko: GET http://")
    assert "rate limited (HTTP 429)" in run.error
    assert "keeps what it had committed" in run.error
    assert stored_counts("coingecko") == (250, 1)
    assert run.records_inserted == 250


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (
            200,
            b'[{"id": "bitcoin", "symbol": "btc", "current_pri',
            "application/json",
            "truncated or malformed JSON",
        ),
        (
            200,
            fixture_path("coingecko_cloudflare_1015_plaintext_body.txt").read_bytes(),
            "text/plain",
            "Cloudflare rate limit (error code 1015)",
        ),
        (
            403,
            fixture_path("coingecko_cloudflare_access_denied_TRUNCATED.html").read_bytes(),
            "text/html",
            "Access denied | api.coingecko.com used Cloudflare to restrict access",
        ),
        (
            200,
            b'{"error": "invalid vs_currency"}',
            "application/json",
            "expected a list, got an error 'invalid vs_currency'",
        ),
    ],
    ids=["truncated-json", "plain-text-1015", "html-block-page", "error-object"],
)
def test_unusable_response_fails_the_run_and_stores_nothing(
    httpserver, status, body, content_type, expected
):
    httpserver.expect_request(MARKETS).respond_with_data(
        body, status=status, content_type=content_type
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("CoinGecko")
    assert expected in run.error
    assert stored_counts("coingecko") == (0, 0)


def test_bad_page_after_a_good_one_keeps_the_good_one_only(settings, httpserver):
    settings.COINGECKO_MAX_COINS = 500
    settings.ETL_BATCH_SIZE = 250
    half = json.dumps(coingecko_rows(250, start=250))[:5000]
    serve_by_param(
        httpserver,
        MARKETS,
        param="page",
        responses={
            "1": lambda: json_response(coingecko_rows(250)),
            "2": lambda: raw_response(half, status=200, content_type="application/json"),
        },
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert "page=2" in run.error and "truncated or malformed JSON" in run.error
    [page] = stored_payloads("coingecko")
    assert {row["id"] for row in page} == {row["id"] for row in coingecko_rows(250)}
    assert stored_counts("coingecko") == (250, 1)


def test_demo_key_goes_in_the_demo_header_and_is_never_stored(settings, httpserver, caplog):
    caplog.set_level(logging.DEBUG)
    settings.COINGECKO_API_KEY = SECRET
    httpserver.expect_request(MARKETS, headers={"x-cg-demo-api-key": SECRET}).respond_with_response(
        json_response(coingecko_rows(5))
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    run.refresh_from_db()
    assert SECRET not in json.dumps(run.options) + run.error + json.dumps(run.checkpoint_after)
    assert SECRET not in json.dumps(stored_payloads("coingecko"))
    assert SECRET not in RawUnit.objects.get().url
    assert SECRET not in caplog.text


def test_pro_plan_key_goes_in_the_pro_header(settings, httpserver):
    settings.COINGECKO_API_KEY = SECRET
    settings.COINGECKO_API_PLAN = "pro"
    httpserver.expect_request(MARKETS, headers={"x-cg-pro-api-key": SECRET}).respond_with_response(
        json_response(coingecko_rows(5))
    )

    assert ingest(source="coingecko").status == Run.Status.SUCCEEDED


def test_pro_plan_without_a_base_url_uses_the_pro_host():
    source = CoinGeckoSource(base_url="", api_key=SECRET, plan="pro", max_coins=10)
    assert source.base_url == PRO_BASE_URL
    assert source.headers() == {"x-cg-pro-api-key": SECRET}
    assert source.configuration_error() is None


@pytest.mark.parametrize(
    ("plan", "base_url", "expected"),
    [
        ("pro", "https://api.coingecko.com/api/v3", "only accepted by pro-api.coingecko.com"),
        ("demo", "https://pro-api.coingecko.com/api/v3", "only accepted by api.coingecko.com"),
        ("pro", "", "the Pro plan needs a key"),
        ("gold", "", "COINGECKO_API_PLAN must be demo or pro"),
    ],
)
def test_key_on_the_wrong_host_is_a_configuration_error(
    settings, httpserver, plan, base_url, expected
):
    settings.COINGECKO_API_KEY = SECRET if expected != "the Pro plan needs a key" else ""
    settings.COINGECKO_API_PLAN = plan
    settings.COINGECKO_BASE_URL = base_url

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("CoinGecko is misconfigured: ")
    assert expected in run.error
    assert SECRET not in run.error


def test_401_for_a_bad_key_fails_the_run_with_a_hint(settings, httpserver):
    settings.COINGECKO_API_KEY = SECRET
    body = {"status": {"error_code": 10010, "error_message": "If you are using Pro API key..."}}
    serve(httpserver, body, status=401)

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert "refused (HTTP 401)" in run.error
    assert "This is a Pro key: set COINGECKO_API_PLAN=pro" in run.error
    assert len(httpserver.log) == 1
    assert stored_counts("coingecko") == (0, 0)


def test_items_missing_id_or_price_are_rejected_and_the_rest_loads(httpserver, caplog):
    rows = coingecko_rows(5)
    del rows[1]["id"]
    rows[2]["current_price"] = None
    rows[3]["current_price"] = "6.73e-06"
    rows[4]["market_cap"] = ""
    serve(httpserver, rows)

    run = ingest(source="coingecko")

    assert run.status == Run.Status.PARTIAL
    assert (run.records_inserted, run.records_rejected) == (3, 2)
    reasons = rejections("coingecko")
    assert reasons == {
        "page 1 row 2 (no id)": "missing id (symbol 'eth', name 'Ethereum')",
        "tether": "missing current_price",
    }
    quotes = quotes_by_provider_id("coingecko")
    assert quotes["usd-coin"].price_usd == Decimal("0.00000673")
    assert quotes["binancecoin"].market_cap_usd is None
    assert "rejected tether: missing current_price" in caplog.text


# --- schema drift ------------------------------------------------------------------------------


def test_added_field_is_noted_and_the_run_succeeds(httpserver, caplog):
    rows = coingecko_rows(4)
    for row in rows[:2]:
        row["price_change_percentage_1h_in_currency"] = 0.5
    serve(httpserver, rows)

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    assert run.drift["added"] == [
        {"field": "price_change_percentage_1h_in_currency", "count": 2, "share": 0.5}
    ]
    assert "schema drift: 1 change(s) in 4 items" in caplog.text


def test_number_turned_string_is_a_type_change_and_still_loads(httpserver):
    rows = coingecko_rows(4)
    for row in rows:
        row["current_price"] = str(row["current_price"])
    serve(httpserver, rows)

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    assert run.drift["type_changes"] == [
        {
            "field": "current_price",
            "expected": ["number"],
            "seen": {"string": 4},
            "count": 4,
            "share": 1.0,
        }
    ]
    assert quotes_by_provider_id("coingecko")["bitcoin"].price_usd == stored("16730.75")


def test_optional_field_removed_warns(httpserver):
    rows = coingecko_rows(4)
    for row in rows:
        del row["fully_diluted_valuation"]
    serve(httpserver, rows)

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    assert run.drift["missing"] == [
        {"field": "fully_diluted_valuation", "count": 4, "share": 1.0, "required": False}
    ]


def test_required_field_removed_fails_the_run_naming_it(httpserver):
    rows = coingecko_rows(4)
    for row in rows:
        row["price"] = row.pop("current_price")
    serve(httpserver, rows)

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert "required field(s) current_price missing from every item (4)" in run.error
    assert run.drift["added"][0]["field"] == "price"
    # The rows are kept, each rejected with its reason, for inspection.
    assert set(rejections("coingecko").values()) == {"missing current_price"}


def test_empty_first_page_fails_the_run_saying_why(httpserver):
    serve(httpserver, [])

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert run.records_read == 0
    assert "CoinGecko: /coins/markets page 1 is an empty list" in run.error
    assert "always lists coins" in run.error
    assert stored_counts("coingecko") == (0, 0)


def test_empty_later_page_is_the_end_of_the_list(settings, httpserver):
    settings.COINGECKO_MAX_COINS = 1000
    serve_by_param(
        httpserver,
        MARKETS,
        param="page",
        responses={"1": lambda: json_response(coingecko_rows(250)), "2": lambda: json_response([])},
    )

    run = ingest(source="coingecko")

    assert run.status == Run.Status.SUCCEEDED
    assert [r.args["page"] for r in requests_to(httpserver, MARKETS)] == ["1", "2"]
    assert stored_counts("coingecko") == (250, 2)
