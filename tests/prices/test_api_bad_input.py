"""Input the API must refuse with a 400 naming the parameter, never answer 500 or quietly ignore.

A forged cursor nested deep enough to exhaust the JSON parser's recursion, a parameter given with
an empty value, and a value outside an enumerated filter's allowed set.
"""

import base64

import pytest
from rest_framework.test import APIClient

from tests.factories import AssetFactory, QuoteFactory, RunFactory

pytestmark = pytest.mark.django_db

PAGED = ["/data", "/api/prices/", "/api/assets/", "/runs", "/api/runs/"]
SOURCES = ["coingecko", "coinpaprika", "coincap", "csv"]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def rows() -> None:
    """A row behind every list, so a filter that is wrongly ignored shows up as results."""
    QuoteFactory(source="csv")
    RunFactory(source="csv")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def assert_refused(response, parameter: str) -> list[str]:
    """A 400 whose body names `parameter`; its messages."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert parameter in body["errors"], body
    assert f"{parameter}:" in body["detail"]
    return body["errors"][parameter]


# --- cursors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param(b64("[" * 1100), id="nested-lists"),
        pytest.param(b64('{"o": ' + "[" * 1100), id="nested-in-object"),
        pytest.param(b64('{"o":"-observed_at","v":' + '{"v":' * 1100), id="nested-objects"),
        pytest.param("[" * 1100, id="not-base64"),
    ],
)
def test_deeply_nested_cursor_is_a_400(client, rows, path, cursor):
    messages = assert_refused(client.get(path, {"cursor": cursor}), "cursor")

    assert messages == ["Invalid cursor."]


def test_a_real_cursor_still_pages(client):
    asset = AssetFactory()
    first, second = QuoteFactory(asset=asset), QuoteFactory(asset=asset)

    page = client.get("/data", {"limit": 1}).json()
    following = client.get(page["next"])

    assert [row["id"] for row in page["results"]] == [second.pk]
    assert following.status_code == 200
    assert [row["id"] for row in following.json()["results"]] == [first.pk]


# --- empty values --------------------------------------------------------------------------------

QUOTE_FILTERS = [
    "symbol",
    "asset",
    "source",
    "observed_after",
    "observed_before",
    "min_price",
    "max_price",
]
ASSET_FILTERS = ["symbol", "slug", "verified"]
RUN_FILTERS = ["source", "status", "trigger", "kind", "started_after", "started_before"]
PAGING = ["limit", "cursor"]

EMPTY_CASES = [
    *[(path, name) for path in ("/data", "/api/prices/") for name in QUOTE_FILTERS],
    *[("/api/assets/", name) for name in ASSET_FILTERS],
    *[(path, name) for path in ("/runs", "/api/runs/") for name in RUN_FILTERS],
    *[(path, name) for path in PAGED for name in PAGING],
    *[(path, "ordering") for path in ("/data", "/api/prices/", "/api/assets/")],
]


@pytest.mark.parametrize("path, parameter", EMPTY_CASES)
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_parameter_is_a_400_naming_it(client, rows, path, parameter, value):
    messages = assert_refused(client.get(path, {parameter: value}), parameter)

    assert "empty" in " ".join(messages)


def test_empty_value_next_to_a_good_one_is_still_refused(client, rows):
    response = client.get("/data", {"source": "csv", "observed_before": ""})

    assert_refused(response, "observed_before")
    assert "source" not in response.json()["errors"]


def test_browsable_api_filter_form_may_leave_fields_blank(client, rows):
    # The HTML filter form submits every field, blank ones included: there blank is "any".
    response = client.get(
        "/data", {"source": "csv", "symbol": "", "asset": ""}, HTTP_ACCEPT="text/html"
    )

    assert response.status_code == 200


# --- enumerations --------------------------------------------------------------------------------

ENUM_CASES = [
    ("/data", "source", SOURCES),
    ("/api/prices/", "source", SOURCES),
    ("/runs", "source", SOURCES),
    ("/api/runs/", "source", SOURCES),
    ("/runs", "status", ["queued", "running", "succeeded", "partial", "failed"]),
    ("/api/runs/", "trigger", ["cli", "cron", "api"]),
    ("/runs", "kind", ["ingest", "renormalize"]),
]


@pytest.mark.parametrize("path, parameter, allowed", ENUM_CASES)
def test_unknown_enumerated_value_is_a_400_listing_the_allowed_ones(
    client, rows, path, parameter, allowed
):
    messages = assert_refused(client.get(path, {parameter: "bogus"}), parameter)

    text = " ".join(messages)
    for value in allowed:
        assert value in text


@pytest.mark.parametrize(
    "path, params, expected",
    [
        ("/data", {"source": "csv"}, 1),
        ("/data", {"source": "coincap"}, 0),
        ("/runs", {"source": "csv", "status": "succeeded", "kind": "ingest"}, 1),
        ("/runs", {"kind": "renormalize"}, 0),
        ("/runs", {"trigger": "cron"}, 0),
    ],
)
def test_allowed_enumerated_values_still_filter(client, rows, path, params, expected):
    response = client.get(path, params)

    assert response.status_code == 200
    assert len(response.json()["results"]) == expected


# --- the query parameters of /api/assets/{id}/history/ -------------------------------------


@pytest.fixture
def history_url() -> str:
    return f"/api/assets/{QuoteFactory(source='csv').asset_id}/history/"


@pytest.mark.parametrize(
    "parameter", ["interval", "source", "observed_after", "observed_before", "limit"]
)
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_history_parameter_is_a_400_saying_so(client, history_url, parameter, value):
    messages = assert_refused(client.get(history_url, {parameter: value}), parameter)

    assert "empty" in " ".join(messages)


@pytest.mark.parametrize("parameter, allowed", [("source", SOURCES), ("interval", ["1h", "1d"])])
def test_unknown_history_enumeration_is_a_400_listing_the_allowed_ones(
    client, history_url, parameter, allowed
):
    messages = assert_refused(client.get(history_url, {parameter: "bogus"}), parameter)

    text = " ".join(messages)
    for value in allowed:
        assert value in text


def test_history_of_a_known_source_still_answers(client, history_url):
    csv = client.get(history_url, {"source": "csv"})
    coincap = client.get(history_url, {"source": "coincap"})

    assert csv.status_code == coincap.status_code == 200
    assert len(csv.json()["results"]) == 1
    assert coincap.json()["results"] == []
