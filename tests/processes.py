"""Helpers for tests that start real processes: the entrypoint, cron jobs, manage.py.

Such a process cannot see an in-memory SQLite test database, so it gets the test database on
PostgreSQL (the test must use `django_db(transaction=True)` so its rows are visible) and a fresh
SQLite file otherwise.
"""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
PYTHON = sys.executable


def base_env(**extra: str) -> dict[str, str]:
    """An environment as bare as cron's, plus `extra`. Production settings: DEBUG off."""
    return {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_hex(32),
        **extra,
    }


def database_url(tmp_path: Path, *, migrate: bool = True) -> str:
    """A DATABASE_URL a child process can share with this test."""
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        credentials = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db["HOST"] or "127.0.0.1"
        port = db["PORT"] or "5432"
        return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"
    url = f"sqlite:///{tmp_path / 'process.sqlite3'}"
    if migrate:
        subprocess.run(
            [PYTHON, str(MANAGE), "migrate", "--verbosity", "0"],
            env=base_env(DATABASE_URL=url),
            cwd=ROOT,
            check=True,
        )
    return url


def runs_in(url: str) -> list[tuple[int, str, str, str]]:
    """(id, source, status, trigger) of the runs a child process wrote, oldest first."""
    query = "SELECT id, source, status, trigger FROM runs_run ORDER BY id"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return [tuple(row) for row in db.execute(query)]
    with connection.cursor() as cursor:
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]


def reference_assets(tmp_path: Path) -> str:
    """The reference mapping for an ingest in a child process: the project's, or while that
    file is absent an empty one (CSV rows then become new assets, which these tests allow)."""
    path = Path(settings.REFERENCE_ASSETS_PATH)
    if path.exists():
        return str(path)
    empty = tmp_path / "reference_assets.csv"
    empty.write_text("slug,symbol,name,rank,coingecko_id,coinpaprika_id,coincap_id\n")
    return str(empty)
