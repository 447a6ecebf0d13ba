#!/usr/bin/env sh
# The one entrypoint of the image. `web`: migrate, load data once, serve with gunicorn.
# Any other arguments are run as a manage.py command (e.g. `ingest --source csv`).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

if [ "${1:-web}" = "web" ]; then
  "$PYTHON" manage.py migrate --noinput
  # Data at once, so the API has something to serve; a failed ingest must not keep the API down.
  "$PYTHON" manage.py ingest --source csv --trigger cron || echo "initial ingest failed; serving anyway" >&2
  exec "$PYTHON" -m gunicorn config.wsgi:application \
    --bind "0.0.0.0:${PORT:-8000}" --workers "${WEB_WORKERS:-2}" --access-logfile -
fi
exec "$PYTHON" manage.py "$@"
