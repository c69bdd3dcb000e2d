#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every test.
# Safe to run on a fresh machine and to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

# --- prerequisites -----------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
if ! command -v kubectl >/dev/null 2>&1 && [ -z "${KUBECTL:-}" ]; then
  log "kubectl not found; trying the distribution package"
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq kubectl) >/dev/null 2>&1 || true
  fi
  if ! command -v kubectl >/dev/null 2>&1; then
    echo "the end-to-end tests drive the real kubectl: put it on PATH or set KUBECTL=/path/to/kubectl" >&2
    exit 1
  fi
fi
log "kubectl: $(${KUBECTL:-kubectl} version --client 2>/dev/null | head -n1)"

# Whatever this script starts, it stops again on the way out.
stop_postgres() { :; }
MOTO_PID=""
cleanup() {
  stop_postgres
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# --- a throwaway PostgreSQL on 127.0.0.1 for the local provider's tests ------
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
if [ -z "${PLINTH_TEST_POSTGRES_URL:-}" ]; then
  PG_BIN="$(pg_bin_dir)"
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || ! command -v psql >/dev/null 2>&1; then
    log "installing the PostgreSQL server and psql (apt)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib) >/dev/null
    PG_BIN="$(pg_bin_dir)"
  fi
  PG_DIR="$(mktemp -d /tmp/plinth-test-pg.XXXXXX)"
  PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PG_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$PG_PASSWORD" > "$PG_DIR/pwfile"
  # PostgreSQL refuses to run as root, so as root it runs as `postgres`.
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$PG_DIR"; fi
  log "starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT"
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pwfile" \
    --auth-host=scram-sha-256 --auth-local=trust >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=400 -c fsync=off" start >/dev/null
  stop_postgres() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PG_DIR"; }
  export PLINTH_TEST_POSTGRES_URL="postgresql://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
fi

# --- moto on 127.0.0.1 standing in for AWS, for the AWS provider's tests ----
# moto_server (moto 5.x) is used where it is on PATH; otherwise moto[server]
# is installed into a venv of this repository's own (.venv, git-ignored).
if [ -z "${PLINTH_TEST_MOTO_URL:-}" ]; then
  MOTO_SERVER="$(command -v moto_server || true)"
  if [ -z "$MOTO_SERVER" ]; then
    if [ ! -x .venv/bin/moto_server ]; then
      log "installing moto[server] into .venv"
      python3 -m venv .venv
      .venv/bin/pip install --quiet 'moto[server]>=5,<6'
    fi
    MOTO_SERVER="$PWD/.venv/bin/moto_server"
  fi
  MOTO_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  MOTO_LOG="$(mktemp /tmp/plinth-test-moto.XXXXXX.log)"
  log "starting moto ($MOTO_SERVER) on 127.0.0.1:$MOTO_PORT"
  "$MOTO_SERVER" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  moto_ready=""
  for _ in $(seq 1 300); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"", method="POST"), timeout=2)' \
      "http://127.0.0.1:$MOTO_PORT/moto-api/reset" 2>/dev/null; then moto_ready=1; break; fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then cat "$MOTO_LOG" >&2; echo "moto_server exited" >&2; exit 1; fi
    sleep 0.1
  done
  if [ -z "$moto_ready" ]; then
    cat "$MOTO_LOG" >&2
    echo "moto_server did not answer on 127.0.0.1:$MOTO_PORT within 30 s; the AWS tests cannot run" >&2
    exit 1
  fi
  export PLINTH_TEST_MOTO_URL="http://127.0.0.1:$MOTO_PORT"
fi

# --- a Python with Crossplane's function SDK, for the composition functions --
# tests/functions/function.py is written against the real SDK, so the tests run
# it with an interpreter that has it: the same git-ignored .venv moto uses.
if [ -z "${PLINTH_TEST_FUNCTION_PYTHON:-}" ]; then
  if ! .venv/bin/python -c 'import crossplane.function' >/dev/null 2>&1; then
    log "installing crossplane-function-sdk-python into .venv"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet -r tests/functions/requirements.txt
  fi
  export PLINTH_TEST_FUNCTION_PYTHON="$PWD/.venv/bin/python"
fi
log "composition function python: $PLINTH_TEST_FUNCTION_PYTHON"

# --- Python tools the tests run: kubernetes-validate and prometheus_client ---
if [ -z "${PLINTH_TEST_PYTHON:-}" ]; then
  if ! .venv/bin/python -c 'import kubernetes_validate, prometheus_client, jsonschema' >/dev/null 2>&1; then
    log "installing kubernetes-validate, prometheus-client and jsonschema into .venv"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet -r tests/python-requirements.txt
  fi
  export PLINTH_TEST_PYTHON="$PWD/.venv/bin/python"
fi
export PLINTH_TEST_KUBERNETES_VALIDATE="${PLINTH_TEST_KUBERNETES_VALIDATE:-$(dirname "$PLINTH_TEST_PYTHON")/kubernetes-validate}"

# --- Backstage's own catalog validators, for the catalog export -------------
# npm ci installs exactly what tests/backstage/package-lock.json pins, into
# tests/backstage/node_modules (git-ignored); skipped when already there.
if [ -z "${PLINTH_TEST_BACKSTAGE_VALIDATE:-}" ]; then
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    log "installing Node.js and npm (apt)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) >/dev/null
  fi
  if [ ! -f tests/backstage/node_modules/.package-lock.json ] ||
     ! cmp -s tests/backstage/package-lock.json tests/backstage/node_modules/.plinth-lock; then
    log "installing @backstage/catalog-model into tests/backstage"
    (cd tests/backstage && npm ci --no-audit --no-fund --loglevel=error &&
      cp package-lock.json node_modules/.plinth-lock)
  fi
  export PLINTH_TEST_BACKSTAGE_VALIDATE="$PWD/tests/backstage/validate.js"
fi

# --- checks ------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- tests -------------------------------------------------------------------
log "cargo test"
# The end-to-end tests each start a real `plinth up`; two at a time suits two cores.
cargo test --workspace --locked -- --test-threads=2
