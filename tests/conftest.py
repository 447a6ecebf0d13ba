from collections.abc import Callable
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from django.db import connection

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write CSV text to a file (bytes are written as given, so CRLF and BOM survive)."""

    def write(text: str | bytes, name: str = "prices.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    return write


def stored(value: str) -> Decimal:
    """`value` as the test database keeps it: exact on PostgreSQL; SQLite keeps decimals as
    floats, so 15 significant digits (see README, "SQLite and precision")."""
    number = Decimal(value)
    if connection.vendor == "sqlite":
        with localcontext(prec=15):
            number = +number
    return number


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the test item (`rep_call`...), for fixtures that act on failure
    (the browser tests' screenshot)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, the test database is a file, not memory: the browser tests' live server
    answers requests on threads of its own, and an in-memory database would make them share
    the test's one connection, which SQLite does not allow at the same time."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("db") / "test.sqlite3"
        )
