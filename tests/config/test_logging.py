"""Log lines: JSON in production with run and request context, readable in development, and
never a secret."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from common.logs import LogContextFilter, bind_log_context, current_log_context
from config.logging import JsonLineFormatter, PlainFormatter
from runs.models import Run
from tests.conftest import FIXTURES
from tests.processes import MANAGE, PYTHON, ROOT, base_env, database_url, reference_assets

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"
REQUIRED = {"timestamp", "level", "logger", "message"}


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Lines from the `common` and `ingestion` loggers, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(LogContextFilter())
    loggers = [logging.getLogger(name) for name in ("common", "ingestion")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield stream
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.django_db(transaction=True)
def test_production_logs_are_json_lines_and_etl_lines_carry_run_id_and_source(tmp_path: Path):
    """A real `ingest` process with production settings (DEBUG off, no LOG_FORMAT given)."""
    result = subprocess.run(
        [PYTHON, str(MANAGE), "ingest", "--source", "csv", "--path", str(KAGGLE)],
        env=base_env(
            DATABASE_URL=database_url(tmp_path),
            REFERENCE_ASSETS_PATH=reference_assets(tmp_path),
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )

    lines = [json.loads(text) for text in result.stderr.splitlines()]
    assert lines, "the run logs its outcome"
    for line in lines:
        assert line.keys() >= REQUIRED, line
    run_id = int(re.search(r"^run (\d+) csv succeeded", result.stdout, re.MULTILINE)[1])
    finished = next(line for line in lines if line["logger"] == "ingestion.pipeline")
    assert finished["run_id"] == run_id
    assert finished["source"] == "csv"
    assert finished["level"] == "INFO"
    assert finished["status"] == Run.Status.SUCCEEDED


@pytest.mark.django_db
def test_a_request_logs_one_line_with_its_request_id(json_lines: io.StringIO):
    response = APIClient().get("/data", HTTP_X_REQUEST_ID="edge-42")

    assert response["X-Request-ID"] == "edge-42"
    (line,) = (entry for entry in parsed(json_lines) if entry["logger"] == "common.middleware")
    assert line["request_id"] == "edge-42"
    assert line["message"].startswith("GET /data 200 ")
    assert line["status"] == 200


@pytest.mark.django_db
def test_an_unusable_request_id_is_replaced_by_a_fresh_one(json_lines: io.StringIO):
    response = APIClient().get("/data", HTTP_X_REQUEST_ID='bad"id\nwith a fake log line')

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    (line,) = (entry for entry in parsed(json_lines) if entry["logger"] == "common.middleware")
    assert line["request_id"] == response["X-Request-ID"]


@pytest.mark.django_db
def test_django_error_lines_after_the_response_keep_the_request_id():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = APIClient().get("/no-such-page?token=abcdef123456", HTTP_X_REQUEST_ID="r-404")
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 404
    (line,) = parsed(stream)
    assert line["request_id"] == "r-404"
    assert "abcdef123456" not in json.dumps(line)


def test_context_nests_and_is_restored():
    with bind_log_context(run_id=7, source="csv"):
        with bind_log_context(request_id="abc"):
            assert current_log_context() == {"run_id": 7, "source": "csv", "request_id": "abc"}
        assert current_log_context() == {"run_id": 7, "source": "csv"}
    assert current_log_context() == {}


def test_plain_lines_are_readable_with_the_context_at_the_end():
    record = logging.LogRecord(
        "ingestion.pipeline", logging.INFO, __file__, 1, "run %s", (7,), None
    )
    with bind_log_context(run_id=7, source="csv"):
        LogContextFilter().filter(record)

    line = PlainFormatter().format(record)

    timestamp, rest = line.split(" ", 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp)
    assert rest == "INFO ingestion.pipeline run 7 [run_id=7 source=csv]"


@pytest.mark.parametrize("formatter_class", [JsonLineFormatter, PlainFormatter])
def test_secrets_never_appear_in_a_line(monkeypatch, formatter_class):
    api_key = f"CG-{secrets.token_hex(8)}"
    db_password = secrets.token_hex(8)
    monkeypatch.setenv("COINGECKO_API_KEY", api_key)
    monkeypatch.setenv("DATABASE_URL", f"postgres://etl:{db_password}@db:5432/marketdata")
    formatter = formatter_class()
    try:
        raise RuntimeError(f"upstream refused key {api_key}")
    except RuntimeError:
        record = logging.makeLogRecord(
            {
                "name": "ingestion.sources.http",
                "levelno": logging.ERROR,
                "levelname": "ERROR",
                "msg": "GET %s with %s failed; database %s",
                "args": (
                    "https://api.example.com/v3/coins?x_cg_pro_api_key=another-key-1&page=2",
                    "Authorization: Bearer tok-987654321",
                    "postgres://etl:other-password@10.0.0.5/db",
                ),
                "exc_info": sys.exc_info(),
                "api_key": api_key,
            }
        )

    line = formatter.format(record)

    for secret in (api_key, db_password, "another-key-1", "tok-987654321", "other-password"):
        assert secret not in line
    assert "page=2" in line  # the rest of the line survives
    assert "***" in line
