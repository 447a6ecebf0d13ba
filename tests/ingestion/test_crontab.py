"""The schedule: crontab lines from settings, and jobs that report failure as cron runs them."""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ingestion.cron import run_ingest_job
from runs.models import Run
from tests.conftest import FIXTURES
from tests.processes import PYTHON, ROOT, base_env, database_url, reference_assets, runs_in

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"
JOB = "ingestion.cron.ingest_job"
FAKE_CRONTAB = """#!/bin/sh
# Stands in for /usr/bin/crontab: `-l` prints the stored table, `FILE` replaces it.
store="$(dirname "$0")/table"
if [ "$1" = "-l" ]; then
  cat "$store" 2>/dev/null || { echo "no crontab" >&2; exit 1; }
else
  cp "$1" "$store"
fi
"""


def cronjobs_with(**env: str) -> list[list[object]]:
    """settings.CRONJOBS as a process started with `env` computes it."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CRONJOBS))"
    )
    result = subprocess.run(
        [PYTHON, "-c", code],
        env=base_env(DJANGO_SETTINGS_MODULE="config.settings", **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.fixture
def crontab(tmp_path: Path, settings) -> Path:
    """A private crontab for `manage.py crontab`: the file its lines are stored in."""
    executable = tmp_path / "crontab"
    executable.write_text(FAKE_CRONTAB)
    executable.chmod(0o755)
    settings.CRONTAB_EXECUTABLE = str(executable)
    return tmp_path / "table"


def test_every_enabled_api_source_runs_hourly_and_the_csv_daily():
    jobs = cronjobs_with(ETL_ENABLED_SOURCES="coingecko,coinpaprika,coincap,csv")

    assert jobs == [
        ["0 * * * *", JOB, ["coingecko"]],
        ["0 * * * *", JOB, ["coinpaprika"]],
        ["0 * * * *", JOB, ["coincap"]],
        ["30 0 * * *", JOB, ["csv"]],
    ]


def test_sources_and_schedules_come_from_settings():
    jobs = cronjobs_with(
        ETL_ENABLED_SOURCES="coinpaprika,csv",
        CRON_API_SCHEDULE="*/15 * * * *",
        CRON_CSV_SCHEDULE="",
    )

    # An empty schedule switches that job off.
    assert jobs == [["*/15 * * * *", JOB, ["coinpaprika"]]]


def test_a_malformed_schedule_stops_the_process_at_startup():
    with pytest.raises(subprocess.CalledProcessError) as excinfo:
        cronjobs_with(CRON_API_SCHEDULE="0 * * *")

    assert "must have five fields" in excinfo.value.stderr


def test_crontab_add_writes_one_line_per_job_and_show_lists_them(crontab: Path, settings, capsys):
    assert settings.CRONJOBS, "the default settings schedule at least one job"

    call_command("crontab", "add")
    call_command("crontab", "show")

    lines = crontab.read_text().splitlines()
    shown = capsys.readouterr().out
    assert len(lines) == len(settings.CRONJOBS)
    for line, job in zip(lines, settings.CRONJOBS, strict=True):
        schedule, command = line[: len(job[0])], line[len(job[0]) :]
        assert schedule == job[0]
        # The wrapper restores the environment and reports the exit status (scripts/cronjob.sh);
        # the interpreter is the one that added the job, this virtualenv's.
        assert command.startswith(f" {ROOT}/scripts/cronjob.sh {PYTHON} crontab run ")
        assert line.endswith("# marketdata-etl")
        job_hash = command.split("crontab run ")[1].split()[0]
        assert f"{job_hash} -> {job}" in shown


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("csv_path", "exit_status", "status"),
    [(KAGGLE, 0, Run.Status.SUCCEEDED), (Path("/nonexistent/prices.csv"), 1, Run.Status.FAILED)],
    ids=["succeeds", "fails"],
)
def test_job_run_as_cron_runs_it_records_the_run_and_reports_its_exit_status(
    tmp_path: Path, crontab: Path, settings, csv_path: Path, exit_status: int, status: str
):
    """The crontab line itself, under `sh -c` with cron's bare environment: the job finds its
    settings in the file the scheduler saved, and django-crontab's habit of exiting 0 after
    any failure does not hide a failed run."""
    url = database_url(tmp_path)
    saved = base_env(
        DATABASE_URL=url,
        ETL_ENABLED_SOURCES="csv",
        CRON_CSV_SCHEDULE="* * * * *",
        CSV_PATH=str(csv_path),
        REFERENCE_ASSETS_PATH=reference_assets(tmp_path),
    )
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "cron.env").write_text(
        "".join(f"export {name}={shlex.quote(value)}\n" for name, value in saved.items())
    )
    # The same job the scheduler's settings produce, so its hash matches.
    settings.CRONJOBS = [("* * * * *", JOB, ["csv"])]
    call_command("crontab", "add", verbosity=0)
    line = crontab.read_text().strip()
    command = line.removeprefix("* * * * * ").split(" # ")[0]

    result = subprocess.run(
        ["/bin/sh", "-c", command],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CRON_RUNTIME_DIR": str(runtime)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == exit_status, result.stdout + result.stderr
    lines = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    job_line = next(entry for entry in lines if entry["logger"] == "ingestion.cron")
    assert job_line["source"] == "csv"
    assert f"exited with status {exit_status}" in job_line["message"]
    wrapper_line = lines[-1]
    assert wrapper_line["logger"] == "cron"
    assert f"exit status {exit_status}" in wrapper_line["message"]
    runs = runs_in(url)
    assert [(source, run_status, trigger) for _, source, run_status, trigger in runs] == [
        ("csv", status, Run.Trigger.CRON)
    ]


@pytest.mark.django_db
def test_a_source_missing_its_key_is_skipped_not_failed_every_hour(settings, caplog):
    settings.COINCAP_API_KEY = ""
    caplog.set_level(logging.WARNING, logger="ingestion.cron")

    assert run_ingest_job("coincap") == 0

    assert not Run.objects.exists()
    assert "cron job ingest --source coincap skipped: COINCAP_API_KEY is not set" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_outside_docker_a_job_runs_with_the_python_that_added_it(
    tmp_path: Path, crontab: Path, settings
):
    """No scheduler container, no saved environment: cron's PATH finds only the system Python,
    which lacks Django; the job must still run with the virtualenv's."""
    url = database_url(tmp_path)
    settings.CRONJOBS = [("* * * * *", JOB, ["csv"])]
    call_command("crontab", "add", verbosity=0)
    command = crontab.read_text().strip().removeprefix("* * * * * ").split(" # ")[0]

    result = subprocess.run(
        ["/bin/sh", "-c", command],
        # What a crontab's own variable lines (or the project's .env) would give the job.
        env=base_env(
            HOME=str(tmp_path),
            DATABASE_URL=url,
            ETL_ENABLED_SOURCES="csv",
            CRON_CSV_SCHEDULE="* * * * *",
            CSV_PATH=str(KAGGLE),
            REFERENCE_ASSETS_PATH=reference_assets(tmp_path),
            CRON_RUNTIME_DIR=str(tmp_path / "no-runtime-dir"),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert "No module named" not in result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(source, status) for _, source, status, _ in runs_in(url)] == [
        ("csv", Run.Status.SUCCEEDED)
    ]


def test_crontab_add_without_a_crontab_program_fails_and_says_why(tmp_path: Path, settings):
    settings.CRONTAB_EXECUTABLE = str(tmp_path / "bin" / "crontab")

    with pytest.raises(CommandError, match=r"no crontab program at .*install cron") as excinfo:
        call_command("crontab", "add", verbosity=0)

    assert excinfo.value.returncode == 1


def test_crontab_add_fails_when_the_crontab_keeps_nothing(tmp_path: Path, settings):
    """A crontab that refuses the table (a user not allowed to use cron, say)."""
    refusing = tmp_path / "crontab"
    refusing.write_text('#!/bin/sh\necho "you are not allowed to use this program" >&2\nexit 1\n')
    refusing.chmod(0o755)
    settings.CRONTAB_EXECUTABLE = str(refusing)

    with pytest.raises(CommandError, match="holds 0 of this project's jobs"):
        call_command("crontab", "add", verbosity=0)
