#!/bin/sh
# Cron runs every django-crontab job through this script: settings.CRONTAB_PYTHON_EXECUTABLE
# points here, so a crontab line reads `cronjob.sh PYTHON crontab run <hash>`, PYTHON being the
# interpreter that ran `manage.py crontab add` (a virtualenv's, outside Docker). This script runs
# the manage.py beside it with that interpreter.
#
# Cron starts a job with an almost empty environment and mails its output (there is no mail in a
# container). So this script
#   - loads the environment the scheduler saved when it started (`entrypoint.sh scheduler`
#     writes it to $CRON_RUNTIME_DIR/cron.env, readable by the job's user only, never into the
#     image),
#   - sends the job's output to the scheduler container's stdout (the pipe $CRON_RUNTIME_DIR/
#     cron.out, which the scheduler copies there),
#   - logs the job's exit status, so a failed job shows as a failure in the logs, not silence.
set -u

runtime="${CRON_RUNTIME_DIR:-/run/marketdata}"
if [ -r "$runtime/cron.env" ]; then
  . "$runtime/cron.env"
fi
if [ -p "$runtime/cron.out" ]; then
  exec >>"$runtime/cron.out" 2>&1
fi
. "$(dirname "$0")/lib.sh"

python="$1"
shift
"$python" "$(dirname "$0")/../manage.py" "$@"
status=$?
if [ "$status" -eq 0 ]; then
  log_line INFO cron "job finished with exit status 0: $*"
else
  log_line ERROR cron "job failed with exit status $status: $*"
fi
exit "$status"
