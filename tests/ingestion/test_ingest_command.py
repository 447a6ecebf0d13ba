"""`manage.py ingest`: output and exit codes, as cron and an operator meet them."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from runs.models import Run
from tests.conftest import FIXTURES
from tests.processes import ROOT

pytestmark = pytest.mark.django_db

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"


def test_success_prints_a_one_line_summary_and_exits_zero():
    out = StringIO()

    call_command("ingest", "--source", "csv", "--path", str(KAGGLE), stdout=out)

    last = out.getvalue().strip().splitlines()[-1]
    run = Run.objects.get()
    assert last.startswith(f"run {run.pk} csv succeeded: read 10, inserted 10")


def test_failed_run_exits_non_zero():
    with pytest.raises(CommandError) as excinfo:
        call_command("ingest", "--source", "csv", "--path", str(KAGGLE), "--fail-after", "3")

    assert excinfo.value.returncode == 1
    assert "injected failure after 3 records" in str(excinfo.value)
    assert Run.objects.get().status == Run.Status.FAILED


def test_already_running_source_exits_three():
    Run.objects.create(source="csv", status=Run.Status.RUNNING)

    with pytest.raises(CommandError) as excinfo:
        call_command("ingest", "--source", "csv", "--path", str(KAGGLE))

    assert excinfo.value.returncode == 3
    assert "already running" in str(excinfo.value)


def test_unknown_source_is_a_usage_error():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("ingest", "--source", "nasdaq")


@pytest.mark.django_db(transaction=True)
def test_command_exit_code_seen_by_cron(tmp_path: Path):
    """A real process, as cron runs it: the shell sees the exit status."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    root = ROOT
    manage = [sys.executable, str(root / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=root)

    ok = subprocess.run(
        [*manage, "ingest", "--source", "csv", "--path", str(KAGGLE)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
    )
    failed = subprocess.run(
        [*manage, "ingest", "--source", "csv", "--path", str(tmp_path / "missing.csv")],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
    )

    assert ok.returncode == 0, ok.stderr
    assert "csv succeeded: read 10" in ok.stdout
    assert failed.returncode == 1
    assert "CSV file not found" in failed.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--source", "csv", "--fail-after", "-1"], "--fail-after must be zero"),
        (["--source", "coingecko", "--path", "prices.csv"], "--path only apply to --source csv"),
        (["--source", "csv", "--asset", "no-such-coin"], "no asset has that slug"),
        (["--source", "all", "--run-id", "1"], "give one --source"),
    ],
)
def test_contradictory_arguments_are_refused_before_any_run(arguments, message):
    with pytest.raises(CommandError, match=message) as excinfo:
        call_command("ingest", *arguments)

    assert excinfo.value.returncode == 2
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--path", "prices.csv"], "--path only apply to --source csv"),
        (["--run-id", "1"], "give one --source"),
    ],
)
def test_all_takes_no_option_of_one_source_even_when_only_that_source_is_enabled(
    settings, arguments, message
):
    settings.ETL_ENABLED_SOURCES = ["csv"]

    with pytest.raises(CommandError, match=message) as excinfo:
        call_command("ingest", "--source", "all", *arguments)

    assert excinfo.value.returncode == 2
    assert not Run.objects.exists()


def test_a_usage_error_is_reported_before_a_bad_enabled_sources_setting(settings):
    settings.ETL_ENABLED_SOURCES = ["nasdaq"]

    with pytest.raises(CommandError, match="--fail-after must be zero") as excinfo:
        call_command("ingest", "--source", "all", "--fail-after", "-1")

    assert excinfo.value.returncode == 2
