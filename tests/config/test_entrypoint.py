"""`scripts/entrypoint.sh web`, the image's start, outside Docker: migrate, ingest once, serve
gunicorn, answer /health; with static files from WhiteNoise and metrics summed across workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runs.models import Run
from tests.conftest import FIXTURES
from tests.processes import MANAGE, PYTHON, ROOT, base_env, database_url, reference_assets, runs_in

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"
# Bounds a broken start, generously for a slow machine; nothing is asserted about speed.
START_DEADLINE_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    raise AssertionError(f"no sample {name} {labels} in /metrics")


@pytest.mark.django_db(transaction=True)
def test_web_migrates_ingests_then_serves_health_data_static_files_and_metrics(tmp_path: Path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    static_root = tmp_path / "static"
    env = base_env(
        # A SQLite file the entrypoint migrates itself; on PostgreSQL, the test database.
        DATABASE_URL=database_url(tmp_path, migrate=False),
        PYTHON=PYTHON,
        PORT=str(port),
        WEB_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        STATIC_ROOT=str(static_root),
        CSV_PATH=str(KAGGLE),
        REFERENCE_ASSETS_PATH=reference_assets(tmp_path),
    )
    # As the image build does.
    subprocess.run(
        [PYTHON, str(MANAGE), "collectstatic", "--noinput", "--verbosity", "0"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    log = (tmp_path / "entrypoint.log").open("w+")
    server = subprocess.Popen(
        [str(ROOT / "scripts" / "entrypoint.sh"), "web"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health_requests = 0
        status = None
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while status != 200:
            assert server.poll() is None, f"entrypoint exited {server.returncode}:\n{_read(log)}"
            assert time.monotonic() < deadline, f"no 200 from /health:\n{_read(log)}"
            try:
                status, _, _ = get(f"{base}/health")
                health_requests += 1
            except OSError:
                time.sleep(0.2)
        for _ in range(5):
            assert get(f"{base}/health")[0] == 200
            health_requests += 1

        # The initial ingest ran before gunicorn started: data is there at once.
        status, headers, body = get(f"{base}/data?limit=3", {"X-Request-ID": "probe-1"})
        assert status == 200
        assert headers["X-Request-ID"] == "probe-1"
        assert len(json.loads(body)["results"]) == 3

        status, headers, _ = get(f"{base}/static/admin/css/base.css")
        assert status == 200
        assert headers["Content-Type"].startswith("text/css")

        status, _, body = get(f"{base}/metrics")
        metrics = body.decode()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        exit_status = server.wait(timeout=60)

    assert status == 200
    # Counted by two workers, reported whole by whichever answered the scrape.
    assert (
        sample(
            metrics,
            "django_http_responses_total_by_status_view_method_total",
            view="health",
            status="200",
            method="GET",
        )
        == health_requests
    )
    assert sample(metrics, "etl_runs_total", source="csv", status="succeeded") == 1
    # gunicorn stops cleanly on SIGTERM, as `docker stop` sends it.
    assert exit_status == 0
    runs = runs_in(env["DATABASE_URL"])
    assert [(source, run_status) for _, source, run_status, _ in runs] == [
        ("csv", Run.Status.SUCCEEDED)
    ]
    # Production logs: JSON lines, one of them the request above with its id.
    lines = [json.loads(text) for text in _read(log).splitlines() if text.startswith("{")]
    assert any(entry.get("request_id") == "probe-1" for entry in lines)


def _read(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()
