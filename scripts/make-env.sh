#!/usr/bin/env sh
# Write a .env for docker compose from .env.example (`make up` runs this when .env is missing):
# fresh random SECRET_KEY and POSTGRES_PASSWORD, DEBUG off, readable by its owner only.
#
# Lines left empty in the example are written commented out: to Django an empty value is not
# "unset" (`DATABASE_URL=` selects no database at all), and the same .env is read by
# `make run` on this machine.
set -eu
cd "$(dirname "$0")/.."
target="${1:-.env}"

if [ -e "$target" ]; then
  echo "$target exists; not overwriting it" >&2
  exit 1
fi

# Hex: safe inside DATABASE_URL, which carries the database password.
random_hex() {
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

umask 077
sed \
  -e "s/^SECRET_KEY=.*/SECRET_KEY=$(random_hex)/" \
  -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$(random_hex)/" \
  -e "s/^DEBUG=.*/DEBUG=false/" \
  -e 's/^\([A-Za-z_][A-Za-z0-9_]*\)=$/# \1=/' \
  .env.example >"$target"
echo "wrote $target with new SECRET_KEY and POSTGRES_PASSWORD; review it, then: make up" >&2
