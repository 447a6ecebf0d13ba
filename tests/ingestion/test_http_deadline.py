"""The total deadline per provider request, against a real local server that drips its answer.

pytest-httpserver answers in one piece, so these tests run a small threaded `http.server` whose
handler sends the headers or the body a few bytes at a time, each piece well within the read
timeout: only a deadline on the whole request can end such an answer early.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingestion.pipeline import ingest
from ingestion.sources.base import SourceError
from ingestion.sources.http import HttpPolicy, JsonClient
from runs.models import Run
from tests.provider_helpers import coingecko_rows, stored_counts, use_local_providers

ROWS = [{"id": "bitcoin", "current_price": 1}]


@dataclass
class Script:
    """How the server answers: request n (from 1) drips when n is in `drip`, else it is fast."""

    body: bytes = json.dumps(ROWS).encode()
    drip: set[int] = field(default_factory=set)
    drip_headers: bool = False
    piece: int = 4
    interval: float = 0.1
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class DripServer(ThreadingHTTPServer):
    daemon_threads = True
    script: Script


class DripHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a cut connection could be reused

    def do_GET(self) -> None:
        script = self.server.script  # type: ignore[attr-defined]
        with script.lock:
            script.requests += 1
            slow = script.requests in script.drip
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(script.body)}\r\nX-Padding: {'x' * 40}\r\n\r\n"
        ).encode()
        try:
            if slow and script.drip_headers:
                self._drip(head, script)
            else:
                self.wfile.write(head)
            if slow:
                self._drip(script.body, script)
            else:
                self.wfile.write(script.body)
            self.wfile.flush()
        except OSError:
            pass  # the client hung up, as it should at its deadline

    def _drip(self, data: bytes, script: Script) -> None:
        for start in range(0, len(data), script.piece):
            self.wfile.write(data[start : start + script.piece])
            self.wfile.flush()
            time.sleep(script.interval)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def drip_server() -> Iterator[DripServer]:
    server = DripServer(("127.0.0.1", 0), DripHandler)
    server.script = Script()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def base_url(server: DripServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/api/v3"


def client(server: DripServer, *, deadline: float, retries: int = 1) -> JsonClient:
    return JsonClient(
        source="coingecko",
        title="CoinGecko",
        base_url=base_url(server),
        policy=HttpPolicy(
            connect_timeout=1.0,
            read_timeout=1.0,
            max_retries=retries,
            backoff_base=0.001,
            max_wait=0.01,
            calls_per_minute=0,
            total_deadline=deadline,
        ),
    )


def test_a_body_that_drips_past_the_deadline_fails_naming_the_deadline(drip_server):
    # 4 bytes every 0.1 s: each read is answered long before the 1 s read timeout, and the
    # whole body would take about 0.9 s; the deadline is 0.3 s.
    drip_server.script.drip = {1, 2}

    started = time.monotonic()
    with pytest.raises(SourceError) as excinfo:
        client(drip_server, deadline=0.3).get_json("/coins/markets")

    message = str(excinfo.value)
    assert "total deadline of 0.3 s" in message
    assert "HTTP_TOTAL_DEADLINE_SECONDS" in message
    assert "gave up after 2 attempt(s)" in message
    assert excinfo.value.retryable
    assert drip_server.script.requests == 2
    # Both attempts were cut off, not read to their end (2 x 0.9 s).
    assert time.monotonic() - started < 1.5


def test_headers_that_drip_past_the_deadline_fail_too(drip_server):
    drip_server.script.drip = {1}
    drip_server.script.drip_headers = True

    with pytest.raises(SourceError, match=r"total deadline of 0.3 s"):
        client(drip_server, deadline=0.3, retries=0).get_json("/coins/markets")


def test_a_deadline_hit_is_retried_like_a_timeout(drip_server, caplog):
    drip_server.script.drip = {1}

    data = client(drip_server, deadline=0.3).get_json("/coins/markets")

    assert data == ROWS
    assert drip_server.script.requests == 2
    assert "total deadline of 0.3 s" in caplog.text
    assert "retrying" in caplog.text


def test_a_slow_body_within_the_deadline_is_read_whole(drip_server):
    drip_server.script.drip = {1}

    data = client(drip_server, deadline=5.0, retries=0).get_json("/coins/markets")

    assert data == ROWS


@pytest.mark.django_db
def test_run_against_a_dripping_provider_fails_with_the_deadline_in_its_error(
    settings, httpserver, drip_server
):
    use_local_providers(settings, httpserver, retries=1)
    settings.COINGECKO_BASE_URL = base_url(drip_server)
    settings.HTTP_TOTAL_DEADLINE_SECONDS = 0.4
    drip_server.script.body = json.dumps(coingecko_rows(5)).encode()
    drip_server.script.drip = {1, 2}

    run = ingest(source="coingecko")

    assert run.status == Run.Status.FAILED
    assert "total deadline of 0.4 s (HTTP_TOTAL_DEADLINE_SECONDS)" in run.error
    assert stored_counts("coingecko") == (0, 0)
