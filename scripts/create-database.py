"""Create the PostgreSQL database DATABASE_URL names, if it does not exist yet.

`make run` runs this before `migrate`, which would otherwise answer a missing database with a
long traceback. It connects to the server's maintenance database (`postgres`, else `template1`)
as DATABASE_URL's user and runs CREATE DATABASE; when that user may not create databases, or
the server does not answer, it says so in one line (with the command to run) and exits 1.
A database that exists, and SQLite (whose file appears on first use), need nothing.

    .venv/bin/python scripts/create-database.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MAINTENANCE_DATABASES = ("postgres", "template1")
# Django's own OPTIONS for the PostgreSQL backend; psycopg2.connect() does not know them.
DJANGO_ONLY_OPTIONS = {"isolation_level", "pool", "server_side_binding", "assume_role"}
CONNECT_TIMEOUT_SECONDS = 10


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def connect(database: str, params: dict[str, Any]) -> Any:
    import psycopg2

    return psycopg2.connect(dbname=database, connect_timeout=CONNECT_TIMEOUT_SECONDS, **params)


def create_database(db: dict[str, Any]) -> str | None:
    """Make sure `db` exists; None when it does (now), else the one-line reason it does not."""
    import psycopg2
    from psycopg2 import sql

    name = db["NAME"]
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        **{k: v for k, v in (db.get("OPTIONS") or {}).items() if k not in DJANGO_ONLY_OPTIONS},
    }
    try:
        connect(name, params).close()
        return None
    except psycopg2.OperationalError as exc:
        refused = exc
    host, port = params["host"] or "localhost", params["port"] or 5432
    server = f"{host}:{port}"
    user = params["user"] or os.environ.get("USER", "")
    hint = f"createdb -h {host} -p {port} -O {user} {name}"

    maintenance = None
    for database in MAINTENANCE_DATABASES:
        try:
            maintenance = connect(database, params)
            break
        except psycopg2.OperationalError:
            continue
    if maintenance is None:
        return f"cannot connect to PostgreSQL at {server} as {user}: {first_line(refused)}"
    try:
        maintenance.autocommit = True
        with maintenance.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is not None:
                # It exists: the refusal was about something else (a password, pg_hba.conf).
                return f"cannot connect to database {name} at {server}: {first_line(refused)}"
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg2.errors.DuplicateDatabase:
        return None  # another process created it meanwhile
    except psycopg2.Error as exc:
        return (
            f"database {name} does not exist and {user} cannot create it ({first_line(exc)}); "
            f"as a user who may, run: {hint}"
        )
    finally:
        maintenance.close()
    print(f"created PostgreSQL database {name} at {server}", file=sys.stderr)
    return None


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        db = settings.DATABASES["default"]
    except ImproperlyConfigured as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    if not db["ENGINE"].startswith(("django.db.backends.postgresql", "django.contrib.gis")):
        return 0
    problem = create_database(db)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
