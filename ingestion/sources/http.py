"""HTTP for the provider sources: one `requests` session per source, timeouts, a total deadline
per request, retries with exponential backoff and jitter, Retry-After, a client-side rate limit,
key redaction, and strict JSON decoding. `JsonApiSource` (ingestion/sources/api.py) builds one
client per run.

Every failure becomes a `SourceError` whose message names the provider and the cause. Error
bodies come in many forms (a JSON error object, Cloudflare's plain-text `error code: 1015`, an
HTML block page); `describe_body` turns each into a short phrase. API keys travel in headers and
are replaced by `***` (`common.logs.redact`) in every message, log line and stored body, in case
a provider echoes them.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings
from urllib3.exceptions import NameResolutionError

from common.logs import REDACTED, redact
from ingestion.sources.base import SourceError
from ingestion.sources.deadline import DeadlineAdapter, PastDeadline, Watchdog
from runs.metrics import record_upstream_response, record_upstream_retry

logger = logging.getLogger(__name__)

USER_AGENT = "crypto-market-data-etl/0.1 (python-requests)"
# Query parameters that carry credentials in some providers' documented alternatives.
_KEY_PARAMS = frozenset(
    {"apikey", "api_key", "key", "token", "access_token", "x_cg_demo_api_key", "x_cg_pro_api_key"}
)
_CLOUDFLARE_CODES = {
    "1015": "Cloudflare rate limit (error code 1015)",
    "1020": "Cloudflare firewall block (error code 1020)",
}
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_CLOUDFLARE_TEXT = re.compile(r"^\s*error code:\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """How patient a client is; read from settings so tests can make every wait tiny."""

    connect_timeout: float
    read_timeout: float
    max_retries: int
    backoff_base: float
    max_wait: float
    calls_per_minute: float
    # The whole of one attempt: connect, headers and body. The timeouts above bound each wait
    # for the network; a body that drips a byte at a time never trips them.
    total_deadline: float = 120.0

    @classmethod
    def from_settings(cls, *, calls_per_minute: float) -> HttpPolicy:
        return cls(
            connect_timeout=settings.HTTP_CONNECT_TIMEOUT,
            read_timeout=settings.HTTP_READ_TIMEOUT,
            total_deadline=settings.HTTP_TOTAL_DEADLINE_SECONDS,
            max_retries=max(0, settings.HTTP_MAX_RETRIES),
            backoff_base=settings.HTTP_BACKOFF_BASE_SECONDS,
            max_wait=settings.HTTP_RETRY_AFTER_CAP_SECONDS,
            calls_per_minute=calls_per_minute,
        )


class RateLimiter:
    """At most `calls_per_minute` request starts per minute, spaced evenly (0: no limit)."""

    def __init__(
        self,
        *,
        calls_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / calls_per_minute if calls_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None

    def wait(self) -> float:
        """Block until the next call is allowed; return how long that took."""
        now = self._clock()
        delay = max(0.0, self._next_at - now) if self._next_at is not None else 0.0
        if delay:
            self._sleep(delay)
        self._next_at = now + delay + self.interval
        return delay


def _unresolved_host(exc: BaseException) -> bool:
    """Whether a connection error is a host name that does not resolve (urllib3 wraps it)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NameResolutionError) or isinstance(
        getattr(reason, "__context__", None), NameResolutionError
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(*, attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so clients that failed
    together do not all come back at the same instant."""
    ceiling: float = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def safe_url(url: str) -> str:
    """`url` fit for a log: no password, and credential-like query values redacted."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(
        [
            (name, REDACTED if name.lower() in _KEY_PARAMS else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="[],*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def error_message(data: Any) -> tuple[int | None, str | None]:
    """The error code and message of the JSON error shapes providers use, if `data` is one:
    `{"error": "..."}`, `{"status": {...}}`, `{"error": {"status": {...}}}`, `{"message": ...}`,
    and CoinCap's `{"data": {"message": ...}}`."""
    if not isinstance(data, dict):
        return None, None
    error = data.get("error")
    if isinstance(error, str):
        return None, error
    status = data.get("status")
    if isinstance(error, dict):
        status = error.get("status", error)
    if isinstance(status, dict) and ("error_message" in status or "error_code" in status):
        code = status.get("error_code")
        return (code if isinstance(code, int) else None), str(status.get("error_message", ""))
    for holder in (data, data.get("data")):
        if isinstance(holder, dict) and isinstance(holder.get("message"), str):
            return None, holder["message"]
    return None, None


def _parse_int(text: str) -> Any:
    return int(text) if len(text) <= 4000 else text


def _parse_float(text: str) -> Any:
    number = float(text)
    return number if math.isfinite(number) else text


def parse_json(body: bytes) -> Any:
    """A provider's JSON body, every value storable as JSON again: a number Python cannot hold
    as it is (NaN, Infinity, 1e5000, an integer of more than 4,000 digits) stays the text
    received, so that item is rejected, not the whole response."""
    return json.loads(body, parse_constant=str, parse_int=_parse_int, parse_float=_parse_float)


@dataclass(frozen=True, slots=True)
class Page:
    """One response: its decoded body, its bytes as received, and the request (no key)."""

    body: Any
    data: bytes
    url: str


def _is_html(response: requests.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    head = response.content.lstrip()[:15].lower()
    return "html" in content_type or head.startswith((b"<!doctype", b"<html", b"<!--", b"<head"))


def describe_body(response: requests.Response) -> str:
    """A short phrase for an error body, whatever its form."""
    body = response.content
    if not body.strip():
        return "an empty body"
    if _is_html(response):
        match = _HTML_TITLE.search(body[:20000])
        title = " ".join(match[1].decode("utf-8", "replace").split()) if match else ""
        return f"an HTML page titled {title!r}" if title else "an HTML page"
    text = body[:2000].decode("utf-8", "replace")
    cloudflare = _CLOUDFLARE_TEXT.match(text)
    if cloudflare:
        code = cloudflare[1]
        return _CLOUDFLARE_CODES.get(code, f"Cloudflare error code {code}")
    try:
        code, message = error_message(json.loads(body))
    except ValueError:
        code, message = None, None
    if message is not None:
        return f"error {code}: {message!r}" if code else f"error {message!r}"
    snippet = " ".join(text.split())
    return repr(snippet[:200] + ("..." if len(snippet) > 200 else ""))


def _forms(secret: str) -> set[str]:
    return {secret, repr(secret)[1:-1], quote(secret, safe="")}


def _from_provider(description: str) -> bool:
    """Whether an error body came from the provider's API rather than its CDN (Cloudflare)."""
    return not description.startswith(("an HTML page", "Cloudflare"))


class JsonClient:
    """GET JSON from one provider, patiently and safely."""

    def __init__(
        self,
        *,
        source: str,
        title: str,
        base_url: str,
        policy: HttpPolicy,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        key_setting: str = "",
        error_hints: Mapping[int, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.title = title
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.key_setting = key_setting
        self.error_hints = dict(error_hints or {})
        # Also as a repr or a URL would show them: error messages quote either way.
        self._secrets = sorted(
            {form for secret in secrets if secret for form in _forms(secret)}, key=len, reverse=True
        )
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._limiter = RateLimiter(calls_per_minute=policy.calls_per_minute, sleep=sleep)
        self.session = requests.Session()
        adapter = DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        )

    def close(self) -> None:
        self.session.close()

    def redact(self, text: str) -> str:
        return redact(text, secrets=self._secrets)

    def fail(self, message: str, *, retryable: bool = False) -> SourceError:
        return SourceError(self.redact(f"{self.title}: {message}"), retryable=retryable)

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON body of `GET base_url + path`, retrying what can be retried."""
        return self.get_page(path, params=params).body

    def get_page(self, path: str, *, params: Mapping[str, Any] | None = None) -> Page:
        """`GET base_url + path`: the body as received (any key redacted) and decoded, and the
        request as it may be shown (no key), retrying what can be retried."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            # A prepared request has its url (the stubs allow None, for one not prepared yet).
            prepared = cast(str, requests.Request("GET", url, params=params).prepare().url)
            shown = self.redact(safe_url(prepared))
        except requests.RequestException as exc:
            raise self.fail(f"cannot request {safe_url(url)!r}: {exc}") from None
        attempts = self.policy.max_retries + 1
        deadline = self.policy.total_deadline
        # No single wait for the network may outlast the attempt's whole deadline.
        timeout = (
            min(self.policy.connect_timeout, deadline),
            min(self.policy.read_timeout, deadline),
        )
        for attempt in range(1, attempts + 1):
            self._limiter.wait()
            started = time.monotonic()
            retry_after: float | None = None
            try:
                response = self._send(url, params=params, timeout=timeout)
            except PastDeadline:
                problem = (
                    f"no complete answer within the total deadline of {deadline:g} s "
                    "(HTTP_TOTAL_DEADLINE_SECONDS); the server sent it too slowly"
                )
            except requests.Timeout as exc:
                kind = "connect" if isinstance(exc, requests.ConnectTimeout) else "read"
                limit = timeout[0] if kind == "connect" else timeout[1]
                problem = f"no answer within {limit:g} s ({kind} timeout)"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                if _unresolved_host(exc):
                    # Retrying will not make a name resolve; say what to check instead.
                    raise self.fail(
                        f"cannot resolve {urlsplit(url).hostname!r}: check the network, DNS, "
                        f"or the base URL setting (GET {shown})",
                        retryable=True,
                    ) from None
                problem = f"connection failed ({type(exc).__name__}: {self.redact(str(exc))})"
            except requests.RequestException as exc:
                # E.g. a header value requests refuses: its message may quote the key.
                raise self.fail(
                    f"GET {shown} could not be sent ({type(exc).__name__}: {exc})"
                ) from None
            else:
                elapsed = (time.monotonic() - started) * 1000
                logger.info(
                    "%s GET %s -> %s (attempt %d of %d, %.0f ms)",
                    self.source,
                    shown,
                    response.status_code,
                    attempt,
                    attempts,
                    elapsed,
                )
                status = response.status_code
                record_upstream_response(source=self.source, status=status)
                if status != 429 and status < 500:
                    return self._decode(response, shown)
                label = "rate limited" if status == 429 else "server error"
                problem = f"{label} (HTTP {status}): {self.redact(describe_body(response))}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == attempts:
                break
            wait = self._wait(attempt=attempt, retry_after=retry_after)
            logger.warning(
                "%s GET %s -> %s (attempt %d of %d); retrying in %.2f s%s",
                self.source,
                shown,
                problem,
                attempt,
                attempts,
                wait,
                f" (Retry-After {retry_after:g} s)" if retry_after is not None else "",
            )
            record_upstream_retry(source=self.source)
            self._sleep(wait)
        raise self.fail(
            f"GET {shown}: {problem}; gave up after {attempts} attempt(s). The run stops here "
            "and keeps what it had committed.",
            retryable=True,
        )

    def _send(
        self, url: str, *, params: Mapping[str, Any] | None, timeout: tuple[float, float]
    ) -> requests.Response:
        """One GET, body included, cut off at the policy's total deadline (`PastDeadline`)."""
        watchdog = Watchdog(self.policy.total_deadline)
        try:
            with watchdog:
                response = self.session.get(url, params=params, timeout=timeout)
        except requests.RequestException:
            if not watchdog.fired:
                raise
            response = None
        if watchdog.fired:
            # Whatever arrived may be cut short; the cut connections must not be reused.
            if response is not None:
                response.close()
            self.session.close()
            raise PastDeadline
        # None only when the watchdog fired, which raised above.
        return cast(requests.Response, response)

    def _wait(self, *, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server said when; waiting longer than the cap would stall a cron run.
            return min(retry_after, self.policy.max_wait)
        return backoff_delay(
            attempt=attempt, base=self.policy.backoff_base, cap=self.policy.max_wait, rng=self._rng
        )

    def _decode(self, response: requests.Response, shown: str) -> Page:
        status = response.status_code
        if status in (401, 403):
            raise self.fail(f"GET {shown} was refused (HTTP {status}): {self._detail(response)}")
        if status >= 400:
            raise self.fail(f"GET {shown} failed (HTTP {status}): {self._detail(response)}")
        content_type = response.headers.get("content-type", "unknown")
        if _is_html(response):
            raise self.fail(
                f"GET {shown} returned {describe_body(response)} instead of JSON "
                f"(HTTP {status}, content-type {content_type})",
                retryable=True,
            )
        body = response.content
        # A provider that echoes the key back in its body must not get it into the raw data.
        for secret in self._secrets:
            body = body.replace(secret.encode(), REDACTED.encode())
        try:
            return Page(parse_json(body), body, shown)
        except UnicodeDecodeError:
            reason = "a body that is not UTF-8 text"
        except json.JSONDecodeError as exc:
            if body.lstrip()[:1] in (b"{", b"["):
                reason = f"truncated or malformed JSON ({exc}; {len(body)} bytes received)"
            else:
                reason = f"a non-JSON body: {describe_body(response)}"
        raise self.fail(
            f"GET {shown} returned {reason} (HTTP {status}, content-type {content_type}); "
            "nothing from this response was stored",
            retryable=True,
        )

    def _detail(self, response: requests.Response) -> str:
        detail = describe_body(response)
        try:
            code, _ = error_message(response.json())
        except ValueError:
            code = None
        if code in self.error_hints:
            detail = f"{detail}. {self.error_hints[code]}"
        elif response.status_code in (401, 403) and self.key_setting and _from_provider(detail):
            state = "is set but was not accepted" if self._secrets else "is not set"
            detail = f"{detail}. Check the API key: {self.key_setting} {state}"
        return detail
