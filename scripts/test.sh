#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real peers the end-to-end
# tests use (Debian packages), checks formatting and lints, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

# Prometheus's PromQL test scripts live beside the repository (see README).
export VIGIL_PROMQL_TESTS="${VIGIL_PROMQL_TESTS:-$(cd .. && pwd)/shared/promql-tests}"
# The peers were just installed: a test that cannot find one fails
# instead of skipping.
export VIGIL_REQUIRE_PEERS=1
# Bounded property/fuzz work in CI; raise locally for longer runs.
export PROPTEST_CASES="${PROPTEST_CASES:-256}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo build (binary for end-to-end tests)"
cargo build --locked --bin vigil

echo "== tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  # Doc tests first: nextest cannot run them, and its summary should be
  # the last thing a reader sees.
  cargo test --workspace --locked --doc
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
