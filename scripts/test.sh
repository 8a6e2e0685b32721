#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Linux machine: installs what the tests need
# (Debian packages, cargo-nextest, a Python venv for the benchmark comparison), checks
# formatting and lints, runs all unit, integration, end-to-end and doc tests, and the
# benchmark suite's quick smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- tools the tests use -----------------------------------------------------------------
missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
command -v valgrind >/dev/null || missing+=(valgrind) # the benchmark's instruction counts
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing tools: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked
bash scripts/python-env.sh

# --- checks and tests ----------------------------------------------------------------------
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the workspace's binaries (mpqueue-top, mpqueue-exporter).
cargo build --workspace --locked
cargo nextest run --workspace --locked --profile ci
cargo test --workspace --doc --locked
# The benchmark suite's smoke mode (it also measures the release dashboard and exporter).
cargo build --release --locked --workspace
cargo run --release --locked -p mpqueue-bench -- --quick --out target/BENCHMARKS-smoke.md
