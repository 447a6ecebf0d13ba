"""`manage.py ingest --source all`: every enabled source, one run each, failures isolated."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from runs.models import Run
from tests.conftest import FIXTURES
from tests.provider_helpers import (
    COINCAP_PATH,
    COINGECKO_PATH,
    COINPAPRIKA_PATH,
    coincap_body,
    coincap_rows,
    coingecko_rows,
    coinpaprika_rows,
    fixture_path,
    json_response,
    stored_counts,
    use_local_providers,
)

pytestmark = pytest.mark.django_db

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"


@pytest.fixture(autouse=True)
def local_providers(settings, httpserver):
    use_local_providers(settings, httpserver)
    settings.CSV_PATH = KAGGLE
    settings.ETL_ENABLED_SOURCES = ["coingecko", "coinpaprika", "coincap", "csv"]
    httpserver.expect_request(f"{COINGECKO_PATH}/coins/markets").respond_with_response(
        json_response(coingecko_rows(5))
    )
    httpserver.expect_request(f"{COINCAP_PATH}/assets").respond_with_response(
        json_response(coincap_body(coincap_rows(2)))
    )


def serve_coinpaprika(httpserver):
    httpserver.expect_request(f"{COINPAPRIKA_PATH}/tickers").respond_with_response(
        json_response(coinpaprika_rows())
    )


def run_all() -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("ingest", "--source", "all", stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def statuses() -> dict[str, str]:
    return dict(Run.objects.values_list("source", "status"))


def test_every_enabled_source_runs_once_and_exit_is_zero(httpserver):
    serve_coinpaprika(httpserver)

    out, error = run_all()

    assert error is None
    assert statuses() == {
        "coingecko": "succeeded",
        "coinpaprika": "succeeded",
        "coincap": "succeeded",
        "csv": "succeeded",
    }
    lines = out.strip().splitlines()
    for source, read in [("coingecko", 5), ("coinpaprika", 2), ("coincap", 2), ("csv", 10)]:
        run = Run.objects.get(source=source)
        assert f"run {run.pk} {source} succeeded: read {read}, inserted {read}," in out
    assert lines[-1] == "all: 4 sources, 4 run, 0 failed"


def test_one_failing_source_does_not_stop_the_others(httpserver):
    page = fixture_path("coingecko_cloudflare_access_denied_TRUNCATED.html").read_bytes()
    httpserver.expect_request(f"{COINPAPRIKA_PATH}/tickers").respond_with_data(
        page, status=200, content_type="text/html"
    )

    out, error = run_all()

    assert error is not None and error.returncode == 1
    assert "1 of 4 sources failed: coinpaprika" in str(error)
    assert statuses() == {
        "coingecko": "succeeded",
        "coinpaprika": "failed",
        "coincap": "succeeded",
        "csv": "succeeded",
    }
    assert stored_counts("coingecko") == (5, 1)
    assert stored_counts("coincap") == (2, 1)
    failed = Run.objects.get(source="coinpaprika")
    assert f"run {failed.pk} coinpaprika failed: read 0" in out
    assert "returned an HTML page titled 'Access denied" in failed.error
    assert out.strip().splitlines()[-1] == "all: 4 sources, 4 run, 1 failed (coinpaprika)"


def test_source_without_its_required_key_is_skipped_with_a_note(settings, httpserver):
    settings.COINCAP_API_KEY = ""
    serve_coinpaprika(httpserver)

    out, error = run_all()

    assert error is None
    assert "coincap skipped: COINCAP_API_KEY is not set" in out
    assert set(statuses()) == {"coingecko", "coinpaprika", "csv"}
    assert out.strip().splitlines()[-1] == "all: 4 sources, 3 run, 0 failed, skipped coincap"


def test_only_enabled_sources_run_in_the_configured_order(settings):
    settings.ETL_ENABLED_SOURCES = ["csv", "coingecko"]

    _, error = run_all()

    assert error is None
    assert list(Run.objects.order_by("id").values_list("source", flat=True)) == [
        "csv",
        "coingecko",
    ]


def test_source_already_running_is_reported_and_the_rest_run(httpserver):
    serve_coinpaprika(httpserver)
    Run.objects.create(source="coincap", status=Run.Status.RUNNING, heartbeat_at=timezone.now())

    out, error = run_all()

    assert error is not None and error.returncode == 3
    assert "coincap not run: source 'coincap' is already running" in out
    assert Run.objects.filter(status=Run.Status.SUCCEEDED).count() == 3


def test_unknown_enabled_source_is_a_configuration_error(settings):
    settings.ETL_ENABLED_SOURCES = ["coingecko", "nasdaq"]

    with pytest.raises(CommandError, match="ETL_ENABLED_SOURCES must list sources among"):
        call_command("ingest", "--source", "all", stdout=StringIO())
    assert not Run.objects.exists()


def test_single_api_source_failure_exits_one_naming_the_provider(settings):
    settings.COINCAP_API_KEY = ""

    with pytest.raises(CommandError) as excinfo:
        call_command("ingest", "--source", "coincap", stdout=StringIO())

    assert excinfo.value.returncode == 1
    assert "CoinCap is misconfigured: COINCAP_API_KEY is not set" in str(excinfo.value)
