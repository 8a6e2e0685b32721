#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Linux machine: checks the module structure
# (no import cycles, no file over 600 lines), installs what the tests need (Debian
# packages, cargo-nextest, a Python venv for the benchmark comparison), checks formatting,
# lints and rustdoc warnings, packages the library as `cargo publish` would, runs all unit,
# integration, end-to-end and doc tests, the Python package's tests, and the benchmark
# suite's quick smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- structure (instant, so first) -------------------------------------------------------
python3 scripts/check-structure.py

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
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
# The library packages (metadata, license files, README) and its package builds on its own.
# A clean checkout (CI) is packaged as is; a working tree with uncommitted changes in the
# package (or the root files it takes) is packaged with them.
allow_dirty=()
if [ -n "$(git status --porcelain -- core Cargo.toml Cargo.lock LICENSE-MIT LICENSE-APACHE 2>/dev/null)" ]; then
  allow_dirty=(--allow-dirty)
fi
cargo publish --dry-run -p mpqueue --locked "${allow_dirty[@]}"
# The end-to-end tests run the workspace's binaries (mpqueue-top, mpqueue-exporter).
cargo build --workspace --locked
cargo nextest run --workspace --locked --profile ci
cargo test --workspace --doc --locked
# The Python package (python/, its own cargo workspace): built once in release mode through
# maturin into .venv, checked (fmt, clippy, rustdoc) and tested with pytest.
bash scripts/python-test.sh
# The benchmark suite's smoke mode (it also measures the release dashboard and exporter).
cargo build --release --locked --workspace
cargo run --release --locked -p mpqueue-bench -- --quick --out target/BENCHMARKS-smoke.md
