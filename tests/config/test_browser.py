"""The console in a real browser: headless Chromium driven by Selenium against a live server.

Debian's `chromium` and `chromium-driver` (CI installs them). A failing test leaves a screenshot
in `.browser-failures/`; with `SCREENSHOTS_DIR` set, the dashboard and the asset chart are saved
there too (that is how the README's pictures are made).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from ingestion.pipeline import ingest
from prices.models import Asset, AssetIdentifier
from runs.models import Run
from tests.factories import QuoteFactory, RunFactory

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    # CI installs them and sets BROWSER_TESTS=required, so there a missing browser fails.
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER) and os.environ.get("BROWSER_TESTS") != "required",
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver)",
    ),
]

PASSWORD = "browser-test-only"
FAILURES = Path(settings.BASE_DIR) / ".browser-failures"
ETHEREUM = Path(settings.BASE_DIR) / "data" / "kaggle" / "coin_Ethereum.csv"


@pytest.fixture
def browser(request):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        FAILURES.mkdir(exist_ok=True)
        driver.save_screenshot(str(FAILURES / f"{request.node.name}.png"))
    driver.quit()


def wait(driver, condition, timeout=15):
    return WebDriverWait(driver, timeout).until(condition)


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


@pytest.fixture
def console(live_server, django_user_model):
    """A database as an operator meets it: the bundled ETH history, two providers' hourly
    quotes of bitcoin over the last week, a failed CoinGecko run after them."""
    django_user_model.objects.create_superuser("operator", "op@example.com", PASSWORD)
    ingest(source="csv", path=str(ETHEREUM))
    bitcoin = Asset.objects.create(slug="bitcoin", symbol="BTC", name="Bitcoin", rank=1)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for source, offset in (("coingecko", Decimal("0")), ("coinpaprika", Decimal("900"))):
        AssetIdentifier.objects.create(
            asset=bitcoin, source=source, external_id="bitcoin", method="reference"
        )
        for hour in range(24 * 7, 0, -1):
            QuoteFactory(
                asset=bitcoin,
                source=source,
                observed_at=now - timedelta(hours=hour),
                price_usd=Decimal(60_000 + (hour % 24) * 150 - hour * 10) + offset,
            )
    RunFactory(source="coingecko", started_at=now - timedelta(hours=3))
    RunFactory(
        source="coingecko",
        status=Run.Status.FAILED,
        started_at=now - timedelta(minutes=30),
        error="CoinGecko: 429 Too Many Requests after 5 attempts\nretry-after: 119",
    )
    return live_server


def ready(chart, name):
    """A wait condition: the chart has drawn range `name`."""
    return lambda driver: (
        chart.get_attribute("data-range") == name and chart.get_attribute("data-state") == "ready"
    )


def log_in(driver, server) -> None:
    driver.get(f"{server.url}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys("operator")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(driver, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".tiles")))


def test_the_dashboard_shows_each_source_and_the_top_assets(browser, console):
    log_in(browser, console)

    tiles = {
        tile.get_attribute("data-source"): tile
        for tile in browser.find_elements(By.CSS_SELECTOR, ".tile")
    }
    assert tiles["csv"].get_attribute("data-state") == "healthy"
    assert "healthy" in tiles["csv"].find_element(By.CSS_SELECTOR, ".badge").text
    assert "2,160 read" in tiles["csv"].text
    assert tiles["coingecko"].get_attribute("data-state") == "failing"
    assert (
        "429 Too Many Requests"
        in tiles["coingecko"].find_element(By.CSS_SELECTOR, ".tile-error").text
    )
    assert "retry-after" not in tiles["coingecko"].text  # the first line only
    assert tiles["coinpaprika"].find_element(By.CSS_SELECTOR, ".badge").text == "never ran"
    # Red for failing, green for healthy: the colour says it before the words do.
    assert tiles["coingecko"].value_of_css_property("border-left-color") != tiles[
        "csv"
    ].value_of_css_property("border-left-color")

    rows = browser.find_elements(By.CSS_SELECTOR, ".assets-table tbody tr")
    assert [row.get_attribute("data-asset") for row in rows] == ["bitcoin", "ethereum"]
    btc = rows[0].text
    assert "BTC" in btc and "now" in btc
    assert rows[0].find_elements(By.CSS_SELECTOR, "svg.sparkline polyline")
    assert "2021-07-06" in rows[1].text  # ETH's data stop there: the last known price
    screenshot(browser, "dashboard")

    tiles["coingecko"].find_element(By.CSS_SELECTOR, ".tile-error a").click()
    wait(
        browser,
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "pre.error-text")),
    )
    assert "retry-after: 119" in browser.find_element(By.CSS_SELECTOR, "pre.error-text").text


def test_the_asset_chart_draws_every_range(browser, console):
    log_in(browser, console)
    for slug, expect_candles in (("bitcoin", False), ("ethereum", None)):
        asset = Asset.objects.get(slug=slug)
        browser.get(f"{console.url}/admin/prices/asset/{asset.pk}/change/")
        chart = wait(
            browser, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".chart"))
        )
        for button in chart.find_elements(By.CSS_SELECTOR, ".chart-ranges button"):
            name = button.get_attribute("data-range")
            button.click()
            wait(browser, ready(chart, name))
            drawn = chart.find_elements(By.CSS_SELECTOR, "svg .point")
            assert drawn, f"{slug} {name}: nothing drawn"
            assert len(drawn) == int(
                chart.find_element(By.TAG_NAME, "svg").get_attribute("data-points")
            )
            if expect_candles is False:
                # Snapshots from two providers: a median line and one line per source.
                lines = chart.find_elements(By.CSS_SELECTOR, "svg path.line")
                assert len(lines) == 3, f"{slug} {name}"
        if slug == "ethereum":
            # Daily bars over a year: candles with bodies and wicks.
            chart.find_element(By.CSS_SELECTOR, "button[data-range='1y']").click()
            wait(browser, ready(chart, "1y"))
            assert len(chart.find_elements(By.CSS_SELECTOR, "svg .candles rect")) >= 300
            screenshot(browser, "asset-chart")
        else:
            screenshot(browser, "asset-chart-sources")
            legend = chart.find_element(By.CSS_SELECTOR, ".chart-legend").text
            assert "coingecko" in legend and "coinpaprika" in legend and "median" in legend


def test_the_runs_list_and_a_failed_run(browser, console):
    log_in(browser, console)
    browser.get(f"{console.url}/admin/runs/run/")
    table = browser.find_element(By.ID, "result_list")
    # Fits 1,400 px: no horizontal scroll.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1400
    failed = table.find_element(By.CSS_SELECTOR, ".badge-run-failed")
    assert failed.text == "failed"
    row = failed.find_element(By.XPATH, "./ancestor::tr")
    assert "429 Too Many Requests" in row.text
    assert row.size["height"] < 60  # one line, not a tall band
    row.find_element(By.CSS_SELECTOR, "th a").click()
    wait(
        browser,
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "pre.error-text")),
    )
    page = browser.find_element(By.ID, "content").text
    assert "retry-after: 119" in page
    assert "s" in browser.find_element(By.CSS_SELECTOR, ".field-duration_text .readonly").text


def test_the_quote_list_filters_by_asset_with_autocomplete(browser, console):
    log_in(browser, console)
    browser.get(f"{console.url}/admin/prices/quote/")
    browser.find_element(By.CSS_SELECTOR, ".asset-filter .select2-selection").click()
    search = wait(
        browser,
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, ".select2-search__field")
        ),
    )
    search.send_keys("bitc")
    option = wait(
        browser,
        expected_conditions.element_to_be_clickable(
            (
                By.XPATH,
                "//li[contains(@class, 'select2-results__option') and contains(., 'Bitcoin')]",
            )
        ),
    )
    option.click()
    wait(browser, lambda d: "asset=" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert rows
    assert all("BTC" in row.text for row in rows)


def test_the_landing_page_leads_to_the_docs(browser, console):
    browser.get(console.url + "/")
    assert "Market data" in browser.title
    browser.find_element(By.PARTIAL_LINK_TEXT, "API docs").click()
    wait(browser, lambda d: d.current_url.endswith("/docs"))
    wait(browser, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui")))
