#!/usr/bin/env sh
# The one entrypoint of the image; it runs the same way outside Docker (tests/config/test_entrypoint.py,
# a VM), with PYTHON naming the interpreter.
#
#   web        migrate, ingest once so the API has data at once, serve gunicorn on $PORT (8000)
#   scheduler  install the django-crontab jobs and run cron in the foreground. Starts as root,
#              because cron must; the jobs run as $APP_USER.
#   other      run as a manage.py command, e.g. `ingest --source csv`, `crontab show`
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

PYTHON="${PYTHON:-python}"
APP_USER="${APP_USER:-app}"
CRON_RUNTIME_DIR="${CRON_RUNTIME_DIR:-/run/marketdata}"

log() {
  log_line "$1" entrypoint "$2"
}

web() {
  if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    # Counter files of an earlier server would be summed with the new ones under the same
    # process ids; start clean, as prometheus_client asks.
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
  fi
  # With JSON logs, commands' own progress lines would break the stream: they are silenced,
  # and the log lines (a run's outcome included) say what happened.
  verbosity=1
  summary=/dev/stdout
  if [ "$(log_format)" = "json" ]; then
    verbosity=0
    summary=/dev/null
  fi
  # Migrations make the rate limits' cache table too (runs/migrations/0004_cache_tables.py).
  "$PYTHON" manage.py migrate --noinput --verbosity "$verbosity"
  log INFO "database migrated"
  # Data at once, so the API has something to serve. A failed ingest is a failed run, visible in
  # /runs and the logs; it must not keep the API down.
  for source in ${INITIAL_INGEST-csv}; do
    "$PYTHON" manage.py ingest --source "$source" --verbosity "$verbosity" >"$summary" ||
      log WARNING "initial ingest --source $source exited with status $?; serving anyway"
  done
  exec "$PYTHON" -m gunicorn --config config/gunicorn_conf.py config.wsgi:application
}

as_app() {
  setpriv --reuid="$APP_USER" --regid="$APP_USER" --init-groups -- "$@"
}

scheduler() {
  if [ "$(id -u)" -ne 0 ]; then
    log ERROR "the scheduler runs cron, which must start as root (jobs run as $APP_USER); in docker compose give the service user: root"
    exit 1
  fi
  install -d -m 0700 -o "$APP_USER" -g "$APP_USER" "$CRON_RUNTIME_DIR"

  # Cron gives jobs an almost empty environment. Save this container's (DATABASE_URL, keys...)
  # where only the jobs' user can read it; scripts/cronjob.sh loads it. Written at each start,
  # so no secret is ever part of the image.
  env_file="$CRON_RUNTIME_DIR/cron.env"
  (
    umask 077
    (
      unset HOME PWD OLDPWD SHLVL
      export -p
    ) >"$env_file.new"
  )
  chown "$APP_USER:$APP_USER" "$env_file.new"
  mv -f "$env_file.new" "$env_file"

  # Jobs write to this pipe; a copy of cat, started here, passes it on to the container's
  # stdout. Opened read-write, so cat never sees an end of file between jobs.
  out="$CRON_RUNTIME_DIR/cron.out"
  rm -f "$out"
  mkfifo -m 0600 "$out"
  chown "$APP_USER:$APP_USER" "$out"
  cat <>"$out" &

  as_app "$PYTHON" manage.py crontab add
  as_app "$PYTHON" manage.py crontab show
  jobs="$(as_app crontab -l 2>/dev/null | grep -c 'crontab run' || true)"
  if [ "$jobs" -eq 0 ]; then
    log WARNING "no job installed: check ETL_ENABLED_SOURCES and the CRON_*_SCHEDULE settings"
  else
    log INFO "$jobs cron job(s) installed for $APP_USER; starting cron"
  fi
  exec cron -f
}

case "${1:-web}" in
  web) web ;;
  scheduler) scheduler ;;
  *) exec "$PYTHON" manage.py "$@" ;;
esac
