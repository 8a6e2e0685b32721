#!/usr/bin/env bash
# Builds the Python package (python/, PyO3 through maturin, release mode) into .venv and
# runs its tests with pytest. The crate is its own cargo workspace (the root one excludes
# it), so its fmt, clippy and rustdoc checks run here too. The tests run mpqueue-top from
# target/debug (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/python-env.sh
py=.venv/bin/python
# maturin's PEP 517 hooks run the `maturin` executable of the venv.
export PATH="$PWD/.venv/bin:$PATH"

cargo fmt --manifest-path python/Cargo.toml -- --check
cargo clippy --manifest-path python/Cargo.toml --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --manifest-path python/Cargo.toml --no-deps --locked

"$py" -m pip install -q "maturin==1.15.0" "pytest==9.0.3" "pytest-timeout==2.4.0"
# `pip install ./python` as the README says, without build isolation (maturin is in the
# venv already): a release build into python/target.
"$py" -m pip install -q --no-build-isolation --force-reinstall --no-deps ./python
cargo build --locked -p mpqueue-top
"$py" -m pytest --timeout=120 -p no:cacheprovider python/tests
