"""The one settings module. Every value can come from the environment (or a `.env` file).

Nothing here needs a server for a local start: `DATABASE_URL` defaults to a SQLite file.
No secret has a default: serving with `DEBUG` off needs `SECRET_KEY` (config/serving.py).
"""

import logging
import sys
from pathlib import Path

import environ
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from config.logging import build_logging_config, default_log_format
from runs import metrics

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def env_path(name: str, default: Path) -> Path:
    """A path setting; set but empty (as in a copied .env.example) means the default."""
    return Path(env.str(name, default="") or default)


def secret_key_is_strong(key: str) -> bool:
    """Django's rule for a production key (the security.W009 check of `check --deploy`)."""
    return (
        len(key) >= SECRET_KEY_MIN_LENGTH
        and len(set(key)) >= SECRET_KEY_MIN_UNIQUE_CHARACTERS
        and not key.startswith(SECRET_KEY_INSECURE_PREFIX)
    )


def proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """'X-Forwarded-Proto' -> ('HTTP_X_FORWARDED_PROTO', 'https'); empty -> None (not trusted)."""
    if not name.strip():
        return None
    return ("HTTP_" + name.strip().upper().replace("-", "_"), "https")


DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
# Serving needs a stable key (sessions, CSRF tokens): config/serving.py refuses to serve with
# DEBUG off and no SECRET_KEY here. Commands that sign nothing (migrate, ingest, checks, cron
# jobs) run with a throwaway key per process, so none is ever written down as a default.
SECRET_KEY_FROM_ENVIRONMENT = bool(SECRET_KEY)
# A guessable key lets anyone forge sessions and CSRF tokens: with DEBUG off, a key from the
# environment must pass Django's own deploy check (length, variety, no "django-insecure-").
if not DEBUG and SECRET_KEY_FROM_ENVIRONMENT and not secret_key_is_strong(SECRET_KEY):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak to run with DEBUG off ({len(SECRET_KEY)} characters): it needs "
        f"at least {SECRET_KEY_MIN_LENGTH} characters, {SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them "
        f"different, and no {SECRET_KEY_INSECURE_PREFIX!r} prefix; make one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
SECRET_KEY = SECRET_KEY or get_random_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# HTTPS, for a deployment behind a TLS proxy: all off by default, for local runs over plain
# HTTP; docker-compose.yml turns them on (README, "Deployment guide"), and with them on
# `manage.py check --deploy` passes.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# The container health check and Prometheus ask over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
# Set but empty (as in a copied .env.example) means 0, no HSTS header.
SECURE_HSTS_SECONDS = int(env.str("SECURE_HSTS_SECONDS", default="") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
# The header the TLS proxy sets to "https" (e.g. X-Forwarded-Proto): a request carrying it is
# taken as secure. Only when every request comes through that proxy, which must overwrite it.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env.str("SECURE_PROXY_SSL_HEADER", default=""))

INSTALLED_APPS = [
    # django.contrib.admin, with the dashboard as its first page.
    "config.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "runs",
    "prices",
    "ingestion",
    # After ingestion, whose `crontab` command wraps this app's and must be found first.
    "django_crontab",
]

MIDDLEWARE = [
    # Outermost, so request counts and latency cover everything below (django-prometheus).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # First, so every response (errors included) carries X-Request-ID and the server time.
    "common.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files under gunicorn, before sessions and auth do any work for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The console's pages (landing page, dashboard, admin look) live in config/templates.
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "libraries": {"console": "common.console_tags"},
        },
    },
]

# Set but empty (as in a copied .env.example) means the SQLite default too.
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# ISO dates and a 24-hour clock on every page (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
# The console's stylesheet and scripts (no CDN: everything the pages load is served from here).
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
# Where `collectstatic` puts files for WhiteNoise to serve (in the image: /app/staticfiles).
STATIC_ROOT = env_path("STATIC_ROOT", BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # WhiteNoise serves `collectstatic`'s output, compressed, under gunicorn. No manifest: pages
    # render even where collectstatic never ran (tests, a fresh checkout).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Read files as they change in development. Fixed here, at import, because pytest-django turns
# DEBUG off while tests run, where no collectstatic output exists to index.
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Tokens (managed in the admin) for scripts; the session for the browsable API.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonThrottle",
        "config.throttling.ScopedThrottle",
    ],
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Prices stay exact: decimals are rendered as strings, never floats.
    "COERCE_DECIMAL_TO_STRING": True,
    # Client addresses for throttling: the number of proxies in front of gunicorn whose
    # X-Forwarded-For entries are trusted. 0 uses the peer address, so a client cannot dodge
    # its limit with a made-up header.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

# --- API: cache, throttling, OpenAPI, health, run comparison ---------------------------------

# Throttle counters must be shared by every gunicorn worker: the database cache by default (no
# extra server; `manage.py createcachetable` makes its table), or e.g. redis://127.0.0.1:6379/0.
CACHES = {
    "default": env.cache_url("CACHE_URL", default="dbcache://django_cache?MAX_ENTRIES=100000"),
}
THROTTLE_CACHE = "default"
# "<count>/<second|minute|hour|day>"; empty disables that limit.
THROTTLE_RATES = {
    "anon": env.str("THROTTLE_ANON_RATE", default="300/minute"),
    "trigger": env.str("THROTTLE_TRIGGER_RATE", default="10/hour"),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Crypto market data API",
    "DESCRIPTION": "Clean price quotes keyed by canonical asset, and the ETL runs behind them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from this project's static files (pinned), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Root aliases (/data, /runs ...) and /api/ paths share views: keep the full path in
    # operation ids so they stay unique; tags are set on the views.
    "SCHEMA_PATH_PREFIX": "",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["config.schema.hide_slash_aliases"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
    ],
}

# /health: a source is "degraded" when its last successful run is older than this many minutes.
# API sources run hourly from cron (two missed runs allowed); the CSV export is daily.
# Sources not named here get HEALTH_DEFAULT_MAX_AGE_MINUTES.
HEALTH_MAX_AGE_MINUTES = {
    "csv": 26 * 60,
    # e.g. HEALTH_MAX_AGE_MINUTES=csv=60,coingecko=30
    **{k: int(v) for k, v in env.dict("HEALTH_MAX_AGE_MINUTES", default={}).items()},
}
HEALTH_DEFAULT_MAX_AGE_MINUTES = env.int("HEALTH_DEFAULT_MAX_AGE_MINUTES", default=120)

# /compare-runs anomaly thresholds.
# Records read changed by more than this fraction of the baseline run's count.
COMPARE_RECORD_CHANGE_THRESHOLD = env.float("COMPARE_RECORD_CHANGE_THRESHOLD", default=0.5)
# Duration above this multiple of the median of the source's recent finished runs ...
COMPARE_DURATION_SPIKE_FACTOR = env.float("COMPARE_DURATION_SPIKE_FACTOR", default=3.0)
# ... and longer than the median by at least this many seconds (sub-second runs jitter a lot).
COMPARE_DURATION_MIN_EXCESS_SECONDS = env.float("COMPARE_DURATION_MIN_EXCESS_SECONDS", default=5.0)
# How many earlier finished runs make "recent".
COMPARE_MEDIAN_WINDOW = env.int("COMPARE_MEDIAN_WINDOW", default=20)
# Share of rejected records rising by more than this (0.05 = five percentage points).
COMPARE_REJECTED_SHARE_RISE = env.float("COMPARE_REJECTED_SHARE_RISE", default=0.05)

# --- Logs and metrics (config/logging.py, runs/metrics.py) ---------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "json": one object per line with timestamp, level, logger, message and the request or run
# context (the production default); "plain": readable lines (the default with DEBUG on).
LOG_FORMAT = env.str("LOG_FORMAT", default="") or default_log_format(debug=DEBUG)
LOGGING = build_logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)
# Python warnings become log lines too, so nothing bypasses the format.
logging.captureWarnings(True)

# Where this process keeps its Prometheus counters: in memory, or with PROMETHEUS_MULTIPROC_DIR
# set, in files that every process (gunicorn workers, cron jobs) shares. Before any metric exists.
metrics.configure_process()
# django-prometheus's migration gauges would query the database as any command starts,
# collectstatic in the image build included.
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- ETL -------------------------------------------------------------------------------------

# The file `ingest --source csv` reads when no --path is given.
CSV_PATH = env_path("CSV_PATH", BASE_DIR / "data" / "kaggle")
# CSV rows per raw unit and transaction: each commits its unit, quotes and checkpoint together.
ETL_BATCH_SIZE = env.int("ETL_BATCH_SIZE", default=5000)
# Crash injection for resume drills: fail the run after this many records (0 = never).
ETL_FAIL_AFTER_N_RECORDS = env.int("ETL_FAIL_AFTER_N_RECORDS", default=0)
# A running run whose heartbeat is older than this is presumed dead and may be taken over.
# An hour: longer than one batch can take to fetch (retries wait up to 2 minutes each), and a
# dead run blocks at most one hourly cron slot.
ETL_STALE_RUN_SECONDS = env.int("ETL_STALE_RUN_SECONDS", default=3600)
# A quote dated further than this in the future is rejected: clocks drift a little, but a row
# dated 2999 would otherwise stay "the latest" for ever.
ETL_MAX_FUTURE_SKEW_SECONDS = env.int("ETL_MAX_FUTURE_SKEW_SECONDS", default=600)


def retention_days(value: str) -> int | None:
    """RAW_RETENTION_DAYS: unset or empty keeps every raw unit; else a whole number of days."""
    if not value.strip():
        return None
    try:
        days = int(value)
    except ValueError:
        days = 0
    if days <= 0:
        raise ImproperlyConfigured(
            f"RAW_RETENTION_DAYS must be a whole number of days above 0, or empty to keep "
            f"every raw unit; got {value!r}"
        )
    return days


# Raw units fetched longer ago than this are deleted by `manage.py prune_raw` (quotes and
# rejections stay). Unset: keep everything.
RAW_RETENTION_DAYS = retention_days(env.str("RAW_RETENTION_DAYS", default=""))

# --- Identity and consolidated prices ----------------------------------------------------------

# Canonical assets and their provider ids (see data/reference_assets.md).
REFERENCE_ASSETS_PATH = env_path(
    "REFERENCE_ASSETS_PATH", BASE_DIR / "data" / "reference_assets.csv"
)
# A source's latest quote counts towards an asset's consolidated price if it is this recent.
CONSOLIDATION_FRESHNESS_MINUTES = env.int("CONSOLIDATION_FRESHNESS_MINUTES", default=180)
# A source whose price is further than this share from the median is flagged (0.05 = 5 %).
CONSOLIDATION_DEVIATION_THRESHOLD = env.float("CONSOLIDATION_DEVIATION_THRESHOLD", default=0.05)

# --- Providers -------------------------------------------------------------------------------
# API keys have no defaults: every source works without one except CoinCap v3.
# A base URL may be any address, e.g. http://127.0.0.1:8080/api/v3 for a local server.

# The registry of sources: name -> class (ingestion.sources.base.Source). The one list of
# source names: commands, filters, /health and cron read it. Adding a provider is a module, a
# line here and a settings block below (README, "Adding a source").
ETL_SOURCES = {
    "coingecko": "ingestion.sources.coingecko.CoinGeckoSource",
    "coinpaprika": "ingestion.sources.coinpaprika.CoinPaprikaSource",
    "coincap": "ingestion.sources.coincap.CoinCapSource",
    "csv": "ingestion.sources.csvfile.CsvSource",
}
# What `ingest --source all` runs, in this order (sources not configured are skipped).
ETL_ENABLED_SOURCES = env.list("ETL_ENABLED_SOURCES", default=list(ETL_SOURCES))

# HTTP behaviour shared by the API sources.
HTTP_CONNECT_TIMEOUT = env.float("HTTP_CONNECT_TIMEOUT", default=5.0)
HTTP_READ_TIMEOUT = env.float("HTTP_READ_TIMEOUT", default=30.0)
# The whole of one request (connect, headers and body), however slowly the body drips in.
HTTP_TOTAL_DEADLINE_SECONDS = env.float("HTTP_TOTAL_DEADLINE_SECONDS", default=120.0)
# Retries after the first attempt, on 429, 5xx, timeouts and connection errors.
HTTP_MAX_RETRIES = env.int("HTTP_MAX_RETRIES", default=4)
# Exponential backoff: about base, 2*base, 4*base... seconds, with jitter.
HTTP_BACKOFF_BASE_SECONDS = env.float("HTTP_BACKOFF_BASE_SECONDS", default=2.0)
# The longest single wait; a longer Retry-After is cut to this (CoinGecko has sent 119 s).
HTTP_RETRY_AFTER_CAP_SECONDS = env.float("HTTP_RETRY_AFTER_CAP_SECONDS", default=120.0)

# CoinGecko /coins/markets. Plan demo or pro picks the key header and, when the base URL is
# empty, the host (api.coingecko.com or pro-api.coingecko.com); empty plan: follow the host.
COINGECKO_API_KEY = env.str("COINGECKO_API_KEY", default="")
COINGECKO_API_PLAN = env.str("COINGECKO_API_PLAN", default="")
COINGECKO_BASE_URL = env.str("COINGECKO_BASE_URL", default="")
COINGECKO_MAX_COINS = env.int("COINGECKO_MAX_COINS", default=500)
# Keyless access is throttled per IP at 5-15 calls a minute; a Demo key allows more.
COINGECKO_CALLS_PER_MINUTE = env.float("COINGECKO_CALLS_PER_MINUTE", default=10)

# CoinPaprika /v1/tickers. Empty base URL: the free host, or the paid host when a key is set.
COINPAPRIKA_API_KEY = env.str("COINPAPRIKA_API_KEY", default="")
COINPAPRIKA_BASE_URL = env.str("COINPAPRIKA_BASE_URL", default="")
# How the key is sent in Authorization: "bearer" (current docs) or "raw" (older spec).
COINPAPRIKA_AUTH_SCHEME = env.str("COINPAPRIKA_AUTH_SCHEME", default="bearer")
COINPAPRIKA_CALLS_PER_MINUTE = env.float("COINPAPRIKA_CALLS_PER_MINUTE", default=10)

# CoinCap v3 /assets (a key is required; v2 is shut down).
COINCAP_API_KEY = env.str("COINCAP_API_KEY", default="")
COINCAP_BASE_URL = env.str("COINCAP_BASE_URL", default="https://rest.coincap.io/v3")
COINCAP_MAX_ASSETS = env.int("COINCAP_MAX_ASSETS", default=2000)
COINCAP_CALLS_PER_MINUTE = env.float("COINCAP_CALLS_PER_MINUTE", default=30)

# --- Schedule (django-crontab) ---------------------------------------------------------------
# The scheduler container installs these jobs with `manage.py crontab add` and runs cron
# (scripts/entrypoint.sh scheduler); `manage.py crontab show` lists what is installed. Each job
# is a cron run of one source, as `ingest --source NAME --trigger cron` (ingestion/cron.py).
# Schedules are five-field cron expressions in UTC; an empty one disables those jobs.
CRON_API_SCHEDULE = env.str("CRON_API_SCHEDULE", default="0 * * * *")
CRON_CSV_SCHEDULE = env.str("CRON_CSV_SCHEDULE", default="30 0 * * *")
# `prune_raw`, daily, when RAW_RETENTION_DAYS is set.
CRON_PRUNE_SCHEDULE = env.str("CRON_PRUNE_SCHEDULE", default="15 3 * * *")
# Every enabled source, on its schedule: the CSV export daily, each API source hourly.
ETL_SCHEDULES = {
    source: CRON_CSV_SCHEDULE if source == "csv" else CRON_API_SCHEDULE
    for source in ETL_ENABLED_SOURCES
}
for _source, _schedule in [*ETL_SCHEDULES.items(), ("prune_raw", CRON_PRUNE_SCHEDULE)]:
    # crontab refuses a whole file for one bad line, and django-crontab ignores that refusal:
    # a typo would leave no job at all, silently.
    if _schedule.strip() and len(_schedule.split()) != 5:
        raise ImproperlyConfigured(
            f"the cron schedule for {_source!r} must have five fields "
            f"(minute hour day month weekday), got {_schedule!r}"
        )
CRONJOBS = [
    (schedule.strip(), "ingestion.cron.ingest_job", [source])
    for source, schedule in ETL_SCHEDULES.items()
    if schedule.strip()
]
if RAW_RETENTION_DAYS and CRON_PRUNE_SCHEDULE.strip():
    CRONJOBS.append((CRON_PRUNE_SCHEDULE.strip(), "ingestion.cron.prune_job", []))
# Cron gives jobs an almost empty environment and mails their output. The wrapper loads the
# environment the scheduler saved at start, sends output to the container's stdout and logs the
# exit status (scripts/cronjob.sh). django-crontab writes each line as
# `<CRONTAB_PYTHON_EXECUTABLE> <CRONTAB_DJANGO_MANAGE_PATH> crontab run <hash>`, and `crontab
# show` reads the hash as its fifth word: so the wrapper takes the first place and the
# interpreter running `crontab add` the second (cron's PATH knows no virtualenv). A job runs
# with the Python that installed it; the wrapper finds manage.py next to itself.
CRONTAB_PYTHON_EXECUTABLE = str(BASE_DIR / "scripts" / "cronjob.sh")
CRONTAB_DJANGO_MANAGE_PATH = sys.executable
CRONTAB_COMMENT = "marketdata-etl"
