"""The CSV source: each layout, and what happens to bad rows and bad files."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.models import RawUnit, Rejection
from ingestion.pipeline import ingest
from prices.models import Quote
from runs.models import Checkpoint, Run
from tests.conftest import FIXTURES, stored

pytestmark = pytest.mark.django_db

KAGGLE_HEADER = "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap"


def test_bundled_kaggle_files_load_every_row(settings):
    run = ingest(source="csv")

    assert run.status == Run.Status.SUCCEEDED
    assert run.records_read == run.records_inserted == 2991 + 2160
    btc = Quote.objects.filter(asset__symbol="BTC")
    assert btc.count() == 2991
    assert btc.order_by("observed_at").first().observed_at == datetime(
        2013, 4, 29, 23, 59, 59, tzinfo=UTC
    )
    assert btc.order_by("observed_at").last().observed_at == datetime(
        2021, 7, 6, 23, 59, 59, tzinfo=UTC
    )
    first = Quote.objects.filter(asset__symbol="ETH").order_by("observed_at").first()
    assert first.asset.symbol == "ETH"
    assert first.asset.name == "Ethereum"
    assert first.observed_at == datetime(2015, 8, 8, 23, 59, 59, tzinfo=UTC)
    assert first.price_usd == stored("0.7533249855041504")  # Close, not Open or High
    assert first.market_cap_usd == stored("45486894.2408")
    assert first.volume_24h_usd == stored("674188.0")


def test_yahoo_layout_takes_symbol_from_file_name():
    run = ingest(source="csv", path=str(FIXTURES / "csv" / "ETH-USD.csv"))

    assert run.status == Run.Status.SUCCEEDED
    assert run.records_inserted == 5
    quote = Quote.objects.get(observed_at=datetime(2015, 8, 8, tzinfo=UTC))
    assert quote.asset.symbol == "ETH"
    assert quote.price_usd == stored("0.7533249855041504")


def test_yahoo_layout_takes_symbol_option_over_file_name(write_csv):
    text = (FIXTURES / "csv" / "ETH-USD.csv").read_text()
    path = write_csv(text, name="export.csv")

    run = ingest(source="csv", path=str(path), symbol="eth")

    assert run.records_inserted == 5
    assert set(Quote.objects.values_list("asset__symbol", flat=True)) == {"ETH"}


def test_yahoo_file_without_any_symbol_is_refused(write_csv):
    path = write_csv((FIXTURES / "csv" / "ETH-USD.csv").read_text(), name="export.csv")

    run = ingest(source="csv", path=str(path))

    assert run.status == Run.Status.FAILED
    assert "--symbol" in run.error
    assert not Quote.objects.exists()


def test_yahoo_null_rows_are_rejected_and_the_rest_load(write_csv):
    path = write_csv(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2015-08-08,2.79,2.80,0.71,0.7533,0.7533,674188\n"
        "2015-08-09,null,null,null,null,null,null\n"
        "2015-08-10,0.71,0.73,0.64,0.7087,0.7087,405283\n",
        name="ETH-USD.csv",
    )

    run = ingest(source="csv", path=str(path))

    assert run.status == Run.Status.PARTIAL
    assert (run.records_inserted, run.records_rejected) == (2, 1)
    rejected = Rejection.objects.get()
    assert rejected.location == "ETH-USD.csv:3"
    assert rejected.reason == "missing Close"
    assert "null" in rejected.text


def test_cryptodatadownload_layout_newest_first_with_url_line():
    run = ingest(source="csv", path=str(FIXTURES / "csv" / "cryptodatadownload_ETHUSD_d.csv"))

    assert run.status == Run.Status.SUCCEEDED
    assert run.records_inserted == 5
    quote = Quote.objects.order_by("observed_at").first()
    assert quote.asset.symbol == "ETH"  # from the pair ETHUSD
    assert quote.observed_at == datetime(2015, 8, 8, 23, 59, 59, tzinfo=UTC)  # ms timestamp
    assert quote.volume_24h_usd == stored("674188.0")  # Volume USD, not Volume ETH


def test_cryptodatadownload_pair_not_in_usd_is_rejected(write_csv):
    path = write_csv(
        "Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume ETH,Volume USD\n"
        "1439078399,2015-08-08 23:59:59,ETHBTC,0.01,0.01,0.002,0.003,10,2000\n"
        "1439164799,2015-08-09 23:59:59,ETH/USD,0.70,0.87,0.62,0.70,500,532170\n"
    )

    run = ingest(source="csv", path=str(path))

    assert (run.records_inserted, run.records_rejected) == (1, 1)
    assert "not a pair quoted in USD" in Rejection.objects.get(location="prices.csv:2").reason


def test_header_is_matched_ignoring_case_spacing_bom_and_crlf(write_csv):
    text = (
        "\ufeffsno, NAME ,symbol,date,high,low,open,close,volume,Market Cap\r\n"
        "1,Ethereum,ETH,2015-08-08 23:59:59,2.79,0.71,2.79,0.7533,674188.0,45486894.2408\r\n"
    )
    run = ingest(source="csv", path=str(write_csv(text)))

    assert run.status == Run.Status.SUCCEEDED
    assert Quote.objects.get().price_usd == stored("0.7533")


def test_unrecognised_layout_is_refused_naming_expected_columns(write_csv):
    path = write_csv("time,price\n2020-01-01,1\n")

    run = ingest(source="csv", path=str(path))

    assert run.status == Run.Status.FAILED
    assert "unrecognised CSV layout" in run.error
    assert KAGGLE_HEADER in run.error
    assert "Date,Open,High,Low,Close,Adj Close,Volume" in run.error
    assert not RawUnit.objects.exists()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "1,Ethereum,ETH,2015-08-08 23:59:59,2.8,0.7,2.8,abc,674188.0,1",
            "Close 'abc' is not a number",
        ),
        ("1,Ethereum,ETH,2015-08-08 23:59:59,2.8,0.7,2.8,,674188.0,1", "missing Close"),
        ("1,Ethereum,ETH,2015-08-08 23:59:59,2.8,0.7,2.8,-1,674188.0,1", "not a positive price"),
        ("1,Ethereum,ETH,2015-08-08 23:59:59,2.8,0.7,2.8,NaN,674188.0,1", "missing Close"),
        ("1,Ethereum,ETH,2015-08-08 23:59:59,2.8,0.7,2.8,4e-19,674188.0,1", "below 1e-18"),
        ("1,Ethereum,ETH,08/08/2015,2.8,0.7,2.8,0.75,674188.0,1", "Date '08/08/2015'"),
        ("1,Ethereum,ETH,2015-08-08 23:59:59,2.8,0.7", "expected 10 columns, found 6"),
    ],
)
def test_bad_rows_are_rejected_with_line_and_reason(write_csv, row, reason):
    good = "2,Ethereum,ETH,2015-08-09 23:59:59,0.88,0.63,0.71,0.7019,532170.0,42399573.4991"
    path = write_csv(f"{KAGGLE_HEADER}\n{row}\n{good}\n")

    run = ingest(source="csv", path=str(path))

    assert (run.records_read, run.records_inserted, run.records_rejected) == (2, 1, 1)
    rejected = Rejection.objects.get()
    assert rejected.location == "prices.csv:2"
    assert reason in rejected.reason


def test_locale_mangled_file_loads_nothing(write_csv):
    # Thousands separators where decimals were, and day-first two-digit-year dates.
    path = write_csv(
        f"{KAGGLE_HEADER}\n"
        "1,Bitcoin,BTC,29-04-13 23:59,147.488.000.000,134.000,134.444,144.539.993.286,0,"
        "1.603.768.864\n"
        "2,Bitcoin,BTC,30-04-13 23:59,146.929.993.286,134.050.003.052,144.0,139.0,0,"
        "14.748.800.659.179.600\n"
    )

    run = ingest(source="csv", path=str(path))

    assert run.records_inserted == 0
    assert run.records_rejected == 2
    assert not Quote.objects.exists()
    reasons = list(Rejection.objects.values_list("reason", flat=True))
    assert all("29-04-13" in r or "30-04-13" in r or "thousands" in r for r in reasons)


def test_missing_file_fails_the_run(tmp_path):
    run = ingest(source="csv", path=str(tmp_path / "nope.csv"))

    assert run.status == Run.Status.FAILED
    assert "not found" in run.error


def test_an_absurd_market_cap_is_left_empty_and_the_price_kept(write_csv):
    row = "1,Ethereum,ETH,2015-08-08 23:59:59,2.8,0.7,2.8,0.7533,674188.0,1e30"
    run = ingest(source="csv", path=str(write_csv(f"{KAGGLE_HEADER}\n{row}\n")))

    quote = Quote.objects.get()
    assert run.records_inserted == 1
    assert (quote.price_usd, quote.market_cap_usd) == (stored("0.7533"), None)


def test_an_over_long_name_rejects_the_row_not_the_run(write_csv):
    good = "2,Ethereum,ETH,2015-08-09 23:59:59,0.88,0.63,0.71,0.7019,532170.0,42399573.4991"
    long_name = "Ethereum " + "x" * 300
    row = f"1,{long_name},ETH,2015-08-08 23:59:59,2.8,0.7,2.8,0.7533,674188.0,1"
    run = ingest(source="csv", path=str(write_csv(f"{KAGGLE_HEADER}\n{row}\n{good}\n")))

    assert (run.status, run.records_inserted, run.records_rejected) == ("partial", 1, 1)
    assert "longer than 255" in Rejection.objects.get().reason


def test_a_folder_ingests_every_csv_file_in_it_each_with_its_own_checkpoint(tmp_path):
    folder = tmp_path / "kaggle"
    folder.mkdir()
    eth = (FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv").read_text()
    btc = eth.replace("Ethereum,ETH", "Bitcoin,BTC")
    (folder / "coin_Bitcoin.csv").write_text(btc)
    (folder / "coin_Ethereum.csv").write_text(eth)
    (folder / "notes.txt").write_text("not a price file")

    first = ingest(source="csv", path=str(folder))
    again = ingest(source="csv", path=str(folder))
    (folder / "coin_Bitcoin.csv").write_text(
        btc + "11,Bitcoin,BTC,2015-08-18 23:59:59,2,1,1,2,5,9\n"
    )
    more = ingest(source="csv", path=str(folder))

    assert first.status == Run.Status.SUCCEEDED
    assert (first.records_read, first.records_inserted) == (20, 20)
    assert set(Quote.objects.values_list("asset__symbol", flat=True)) == {"BTC", "ETH"}
    assert again.records_read == 0
    assert (more.records_read, more.records_inserted) == (1, 1)
    files = Checkpoint.objects.get(source="csv").cursor["files"]
    assert {Path(name).name for name in files} == {"coin_Bitcoin.csv", "coin_Ethereum.csv"}


def test_an_empty_folder_fails_the_run_naming_it(tmp_path):
    run = ingest(source="csv", path=str(tmp_path))
    assert run.status == Run.Status.FAILED
    assert f"no .csv file in the folder {tmp_path}" in run.error
