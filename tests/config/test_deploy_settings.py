"""Deployment settings from the environment: HTTPS behind a proxy, and no weak SECRET_KEY.

The production example is docker-compose.yml's environment, read from the file itself, so the
test follows what compose really sets.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import yaml

from tests.processes import MANAGE, PYTHON, ROOT, base_env

# `${NAME:-default}` in docker-compose.yml: the value compose uses when .env does not set NAME.
INTERPOLATION = re.compile(r"\$\{(\w+):?-([^}]*)\}")
SECURITY_SETTINGS = (
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


def compose_security_environment() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["x-app"]["environment"]
    return {
        name: INTERPOLATION.sub(lambda match: match.group(2), str(environment[name]))
        for name in SECURITY_SETTINGS
    }


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, *args],
        env=base_env(
            DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
            DJANGO_SETTINGS_MODULE="config.settings",
            **env,
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_production_example(tmp_path: Path):
    result = run(
        [str(MANAGE), "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        ALLOWED_HOSTS="marketdata.example.org",
        SECRET_KEY=secrets.token_urlsafe(50),
        **compose_security_environment(),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_with_the_local_defaults(tmp_path: Path):
    result = run(
        [str(MANAGE), "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        SECRET_KEY=secrets.token_urlsafe(50),
    )

    assert result.returncode != 0
    assert "security.W008" in result.stderr


REQUESTS = """
import django
django.setup()
from django.test import Client
client = Client()
for path, headers in [
    ("/data", {}),
    ("/health", {}),
    ("/data", {"X-Forwarded-Proto": "https"}),
]:
    response = client.get(path, headers=headers)
    print(path, response.status_code, response.get("Location", "-"),
          response.get("Strict-Transport-Security", "-"))
"""


def test_the_production_example_redirects_to_https_but_health_and_sends_hsts(tmp_path: Path):
    migrated = run([str(MANAGE), "migrate", "--verbosity", "0"], tmp_path)
    assert migrated.returncode == 0, migrated.stderr

    result = run(
        ["-c", REQUESTS],
        tmp_path,
        ALLOWED_HOSTS="testserver",
        **compose_security_environment(),
    )

    assert result.returncode == 0, result.stderr
    plain, health, proxied = (line.split(" ", 3) for line in result.stdout.splitlines())
    assert plain == ["/data", "301", "https://testserver/data", "-"]
    # Probes inside the network (the container health check, Prometheus) ask over plain HTTP.
    assert health[1] == "200"
    assert proxied[1] == "200"
    assert proxied[3] == "max-age=31536000; includeSubDomains; preload"


def test_a_short_secret_key_is_refused_in_one_line_when_debug_is_off(tmp_path: Path):
    result = run([str(MANAGE), "check"], tmp_path, SECRET_KEY=secrets.token_hex(8))

    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert "SECRET_KEY is too weak to run with DEBUG off (16 characters)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_key_of_one_repeated_character_is_refused_too(tmp_path: Path):
    result = run([str(MANAGE), "check"], tmp_path, SECRET_KEY="a" * 60)

    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_a_short_secret_key_is_fine_for_local_development(tmp_path: Path):
    result = run([str(MANAGE), "check"], tmp_path, DEBUG="true", SECRET_KEY=secrets.token_hex(4))

    assert result.returncode == 0, result.stderr
