"""`scripts/create-database.py` (run by `make run` before migrate): a DATABASE_URL naming a
PostgreSQL database that does not exist yet gets it created, or one line saying what to run."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from django.db import connection
from psycopg2 import sql

from tests.processes import PYTHON, ROOT, base_env

SCRIPT = ROOT / "scripts" / "create-database.py"


def server() -> dict[str, Any]:
    if connection.vendor != "postgresql":
        pytest.skip("creates databases on the local PostgreSQL server")
    db = connection.settings_dict
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": str(db["PORT"] or 5432),
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
    }


def url(params: dict[str, Any], name: str, *, user: str | None = None) -> str:
    credentials = user or params["user"]
    if params["password"] and user is None:
        credentials += f":{params['password']}"
    return f"postgres://{credentials}@{params['host']}:{params['port']}/{name}"


def admin(params: dict[str, Any], statement: sql.Composable, args: list | None = None) -> list:
    """Run one statement on the maintenance database, outside any transaction."""
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, args)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


def exists(params: dict[str, Any], name: str) -> bool:
    return bool(admin(params, sql.SQL("SELECT 1 FROM pg_database WHERE datname = %s"), [name]))


def create_database(database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, str(SCRIPT)],
        env=base_env(DATABASE_URL=database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def new_name() -> Iterator[str]:
    params = server()
    name = f"scratch_{secrets.token_hex(6)}"
    yield name
    admin(params, sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_a_missing_database_is_created_once(new_name: str):
    params = server()
    assert not exists(params, new_name)

    first = create_database(url(params, new_name))
    again = create_database(url(params, new_name))

    assert first.returncode == 0, first.stderr
    assert f"created PostgreSQL database {new_name}" in first.stderr
    assert exists(params, new_name)
    assert (again.returncode, again.stderr) == (0, "")


def test_a_user_who_may_not_create_databases_is_told_what_to_run(new_name: str):
    params = server()
    role = f"scratch_{secrets.token_hex(6)}"
    password = secrets.token_hex(16)
    try:
        admin(
            params,
            sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            ),
        )
    except psycopg2.errors.InsufficientPrivilege:
        pytest.skip("the test database user may not create roles")
    try:
        result = create_database(url(params, new_name, user=f"{role}:{password}"))
    finally:
        admin(params, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"database {new_name} does not exist and {role} cannot create it" in result.stderr
    assert f"-O {role} {new_name}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not exists(params, new_name)


def test_a_server_that_does_not_answer_is_one_line():
    # Port 1: nothing listens there. No PostgreSQL server is needed for this one.
    result = create_database("postgres://nobody@127.0.0.1:1/marketdata")

    assert result.returncode == 1
    assert result.stderr.startswith("cannot connect to PostgreSQL at 127.0.0.1:1 as nobody")
    assert result.stderr.count("\n") == 1, result.stderr


def test_sqlite_needs_nothing(tmp_path):
    result = create_database(f"sqlite:///{tmp_path / 'any.sqlite3'}")

    assert (result.returncode, result.stderr) == (0, "")
