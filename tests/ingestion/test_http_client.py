"""The shared HTTP client against a real local server: retries, Retry-After, timeouts, error
bodies, rate limiting and key redaction."""

import logging
import random
import socket
import time
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.sources.base import SourceError
from ingestion.sources.http import (
    HttpPolicy,
    JsonClient,
    RateLimiter,
    backoff_delay,
    parse_retry_after,
    safe_url,
)
from tests.provider_helpers import (
    SECRET,
    UNEXPECTED_STATUS,
    fixture_path,
    json_response,
    raw_response,
)

PATH = "/api/v3/coins/markets"


def policy(**overrides: float) -> HttpPolicy:
    values = {
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "max_retries": 2,
        "backoff_base": 0.001,
        "max_wait": 0.01,
        "calls_per_minute": 0,
        **overrides,
    }
    return HttpPolicy(**values)


def client_for(server: HTTPServer, **overrides: float) -> JsonClient:
    server.no_handler_status_code = UNEXPECTED_STATUS
    return JsonClient(
        source="coingecko",
        title="CoinGecko",
        base_url=server.url_for("/api/v3"),
        policy=policy(**overrides),
        headers={"x-cg-demo-api-key": SECRET},
        secrets=[SECRET],
        key_setting="COINGECKO_API_KEY",
    )


def fail_then(server: HTTPServer, first: Response, then: Response) -> None:
    server.expect_oneshot_request(PATH).respond_with_response(first)
    server.expect_request(PATH).respond_with_response(then)


# --- parsing and arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("119", 119.0),
        ("1.5", 1.5),
        ("  7 ", 7.0),
        ("-3", 0.0),
        ("Thu, 29 Sep 2022 16:19:14 GMT", 120.0),
        ("Thu, 29 Sep 2022 16:00:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header, seconds):
    now = datetime(2022, 9, 29, 16, 17, 14, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


def test_backoff_grows_exponentially_with_jitter_and_stays_under_the_cap():
    rng = random.Random(7)
    delays = [backoff_delay(attempt=n, base=1.0, cap=10.0, rng=rng) for n in range(1, 7)]
    ceilings = [1, 2, 4, 8, 10, 10]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    # Jitter: two clients failing together do not wait the same time.
    other = [
        backoff_delay(attempt=n, base=1.0, cap=10.0, rng=random.Random(8)) for n in range(1, 7)
    ]
    assert delays != other


def test_rate_limiter_spaces_calls_evenly():
    clock = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(calls_per_minute=30, clock=lambda: clock[0], sleep=sleep)
    limiter.wait()
    limiter.wait()
    clock[0] += 0.5  # some work between calls counts toward the interval
    limiter.wait()
    assert waits == [2.0, 1.5]


def test_no_rate_limit_when_calls_per_minute_is_zero():
    waits: list[float] = []
    limiter = RateLimiter(calls_per_minute=0, sleep=waits.append)
    for _ in range(5):
        limiter.wait()
    assert waits == []


def test_safe_url_hides_credentials():
    url = "https://user:pw@rest.coincap.io/v3/assets?limit=5&apiKey=abc123&x_cg_pro_api_key=k"
    shown = safe_url(url)
    assert "abc123" not in shown and "pw" not in shown and "=k" not in shown
    assert shown.startswith("https://rest.coincap.io/v3/assets?limit=5&apiKey=***")


# --- retries -----------------------------------------------------------------------------------


def test_429_with_retry_after_then_success(httpserver, caplog):
    caplog.set_level(logging.INFO, logger="ingestion.sources.http")
    body = fixture_path("coingecko_429_rate_limit_body_2022-09-29.json").read_bytes()
    fail_then(
        httpserver,
        raw_response(
            body, status=429, content_type="application/json", headers={"retry-after": "119"}
        ),
        json_response([{"id": "bitcoin"}]),
    )

    data = client_for(httpserver).get_json("/coins/markets", params={"page": 1})

    assert data == [{"id": "bitcoin"}]
    assert len(httpserver.log) == 2
    # The server's 119 s is honoured, cut to the configured cap (0.01 s here).
    assert "retrying in 0.01 s (Retry-After 119 s)" in caplog.text
    assert "You've exceeded the Rate Limit" in caplog.text


def test_500_then_success(httpserver):
    fail_then(
        httpserver,
        raw_response("upstream exploded", status=500, content_type="text/plain"),
        json_response([]),
    )

    assert client_for(httpserver).get_json("/coins/markets") == []
    assert [response.status_code for _, response in httpserver.log] == [500, 200]


def test_429_that_outlasts_the_retry_budget_fails_and_says_so(httpserver):
    httpserver.expect_request(PATH).respond_with_data(
        "error code: 1015", status=429, content_type="text/plain"
    )

    with pytest.raises(SourceError) as excinfo:
        client_for(httpserver, max_retries=3).get_json("/coins/markets")

    message = str(excinfo.value)
    assert len(httpserver.log) == 4
    assert excinfo.value.retryable
    assert message.startswith("CoinGecko: GET http://")
    assert "rate limited (HTTP 429): Cloudflare rate limit (error code 1015)" in message
    assert "gave up after 4 attempt(s)" in message


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = JsonClient(
        source="coincap",
        title="CoinCap",
        base_url=f"http://127.0.0.1:{port}/v3",
        policy=policy(),
    )
    with pytest.raises(SourceError, match=r"^CoinCap: .*connection failed.*3 attempt"):
        client.get_json("/assets")


# --- timeouts need a server that answers other requests while one handler sleeps ---------------


@pytest.fixture
def threaded_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def slow_first_answer(seconds: float):
    calls = []

    def handler(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(seconds)
        return json_response([{"id": "bitcoin"}])

    return handler


def test_read_timeout_then_success(threaded_server, caplog):
    threaded_server.expect_request(PATH).respond_with_handler(slow_first_answer(1.0))

    data = client_for(threaded_server, read_timeout=0.2).get_json("/coins/markets")

    assert data == [{"id": "bitcoin"}]
    assert "no answer within 0.2 s (read timeout)" in caplog.text


def test_timeouts_that_never_end_fail_the_request(threaded_server):
    def always_slow(request: Request) -> Response:
        time.sleep(0.5)
        return json_response([])

    threaded_server.expect_request(PATH).respond_with_handler(always_slow)

    with pytest.raises(SourceError, match=r"no answer within 0.1 s \(read timeout\).*3 attempt"):
        client_for(threaded_server, read_timeout=0.1).get_json("/coins/markets")


# --- bodies that are not the JSON asked for --------------------------------------------------


def test_html_block_page_is_an_error_not_data(httpserver):
    page = fixture_path("coingecko_cloudflare_access_denied_TRUNCATED.html").read_bytes()
    httpserver.expect_request(PATH).respond_with_data(page, status=403, content_type="text/html")

    with pytest.raises(SourceError) as excinfo:
        client_for(httpserver).get_json("/coins/markets")

    assert len(httpserver.log) == 1  # a block is not retried at once
    assert "refused (HTTP 403)" in str(excinfo.value)
    assert "Access denied | api.coingecko.com used Cloudflare" in str(excinfo.value)


def test_html_page_with_status_200_is_an_error(httpserver):
    page = fixture_path("coingecko_cloudflare_access_denied_TRUNCATED.html").read_bytes()
    httpserver.expect_request(PATH).respond_with_data(page, status=200, content_type="text/html")

    with pytest.raises(SourceError, match="returned an HTML page titled 'Access denied"):
        client_for(httpserver).get_json("/coins/markets")


def test_plain_text_1015_with_status_200_is_an_error(httpserver):
    body = fixture_path("coingecko_cloudflare_1015_plaintext_body.txt").read_bytes()
    httpserver.expect_request(PATH).respond_with_data(body, status=200, content_type="text/plain")

    with pytest.raises(SourceError) as excinfo:
        client_for(httpserver).get_json("/coins/markets")

    assert "a non-JSON body: Cloudflare rate limit (error code 1015)" in str(excinfo.value)


def test_truncated_json_is_an_error(httpserver):
    body = b'[{"id": "bitcoin", "current_price": 16730.75}, {"id": "ethe'
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")

    with pytest.raises(SourceError, match=r"truncated or malformed JSON \(Unterminated string"):
        client_for(httpserver).get_json("/coins/markets")


def test_empty_body_is_an_error(httpserver):
    httpserver.expect_request(PATH).respond_with_data(b"", content_type="application/json")

    with pytest.raises(SourceError, match="a non-JSON body: an empty body"):
        client_for(httpserver).get_json("/coins/markets")


# --- keys --------------------------------------------------------------------------------------


def test_key_is_sent_but_never_shown(httpserver, caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"status": {"error_code": 401, "error_message": f"invalid key {SECRET}"}}
    httpserver.expect_request(PATH, headers={"x-cg-demo-api-key": SECRET}).respond_with_response(
        json_response(echo, status=401)
    )

    with pytest.raises(SourceError) as excinfo:
        client_for(httpserver).get_json("/coins/markets")

    message = str(excinfo.value)
    assert "refused (HTTP 401): error 401: 'invalid key ***'" in message
    assert "COINGECKO_API_KEY is set but was not accepted" in message
    assert SECRET not in message
    assert SECRET not in caplog.text


def test_each_request_is_logged_with_source_url_status_and_attempt(httpserver, caplog):
    caplog.set_level(logging.INFO, logger="ingestion.sources.http")
    fail_then(httpserver, Response("busy", status=503), json_response([]))

    client_for(httpserver).get_json("/coins/markets", params={"page": 2})

    url = httpserver.url_for(PATH) + "?page=2"
    assert f"coingecko GET {url} -> 503 (attempt 1 of 3" in caplog.text
    assert f"coingecko GET {url} -> 200 (attempt 2 of 3" in caplog.text


def test_key_that_cannot_be_sent_is_an_error_that_does_not_quote_it(httpserver):
    broken = f"{SECRET}\nsecond-line"
    client = JsonClient(
        source="coincap",
        title="CoinCap",
        base_url=httpserver.url_for("/v3"),
        policy=policy(),
        headers={"Authorization": f"Bearer {broken}"},
        secrets=[broken],
    )

    with pytest.raises(SourceError) as excinfo:
        client.get_json("/assets")

    assert "could not be sent (InvalidHeader" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)
    assert len(httpserver.log) == 0


def test_cloudflare_refusal_does_not_blame_the_key(httpserver):
    httpserver.expect_request(PATH).respond_with_data(
        "error code: 1020", status=403, content_type="text/plain"
    )

    with pytest.raises(SourceError) as excinfo:
        client_for(httpserver).get_json("/coins/markets")

    assert "refused (HTTP 403): Cloudflare firewall block (error code 1020)" in str(excinfo.value)
    assert "Check the API key" not in str(excinfo.value)
