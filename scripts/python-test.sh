#!/usr/bin/env bash
# Builds the Python package (python/, PyO3 through maturin, release mode) into .venv
# (scripts/python-env.sh) and runs its tests with pytest. The crate is its own cargo
# workspace (the root one excludes it), so its fmt, clippy and rustdoc checks run here too.
# The tests run mpqueue-top and the bytes_peer example from target/debug (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/python-env.sh # .venv with the package installed
py=.venv/bin/python

cargo fmt --manifest-path python/Cargo.toml -- --check
cargo clippy --manifest-path python/Cargo.toml --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --manifest-path python/Cargo.toml --no-deps --locked

"$py" -m pip install -q "pytest==9.0.3" "pytest-timeout==2.4.0"
cargo build --locked -p mpqueue-top
cargo build --locked -p mpqueue-examples --example bytes_peer # the Rust side of a shared queue
"$py" -m pytest --timeout=120 -p no:cacheprovider python/tests
