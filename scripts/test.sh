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

# --- checks ------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- tests -------------------------------------------------------------------
log "cargo test"
# The end-to-end tests each start a real `plinth up`; two at a time suits two cores.
cargo test --workspace --locked -- --test-threads=2
