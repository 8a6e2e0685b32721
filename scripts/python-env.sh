#!/usr/bin/env bash
# Makes .venv (inside the workspace) with faster-fifo and this checkout's mpqueue package
# (python/, built in release mode through maturin), for the Python tests and the Python
# side of the benchmarks. Run it again after changing python/ or core/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -c 'import faster_fifo' 2>/dev/null || .venv/bin/pip install -q faster-fifo==1.5.2
# maturin's PEP 517 hooks run the `maturin` executable of the venv.
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pip install -q "maturin==1.15.0"
# `pip install ./python` as the README says, without build isolation (maturin is in the
# venv already): a release build into python/target.
.venv/bin/python -m pip install -q --no-build-isolation --force-reinstall --no-deps ./python
