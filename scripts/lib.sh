# Sourced by entrypoint.sh and cronjob.sh: log lines in the application's format, so the
# container's output is one stream of JSON objects in production (config/logging.py).

# json unless LOG_FORMAT says otherwise or DEBUG is on, as settings.LOG_FORMAT decides.
log_format() {
  if [ -n "${LOG_FORMAT:-}" ]; then
    printf '%s' "$LOG_FORMAT"
    return
  fi
  case "$(printf '%s' "${DEBUG:-}" | tr '[:upper:]' '[:lower:]')" in
    true | on | ok | y | yes | 1) printf 'plain' ;;
    *) printf 'json' ;;
  esac
}

# log_line LEVEL LOGGER MESSAGE...  (to stderr)
log_line() {
  _level="$1"
  _logger="$2"
  shift 2
  _now="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
  if [ "$(log_format)" = "json" ]; then
    # Messages here are one line of our own making; quotes and backslashes are all to escape.
    _message="$(printf '%s' "$*" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
    printf '{"timestamp": "%s", "level": "%s", "logger": "%s", "message": "%s"}\n' \
      "$_now" "$_level" "$_logger" "$_message" >&2
  else
    printf '%s %s %s %s\n' "$_now" "$_level" "$_logger" "$*" >&2
  fi
}
