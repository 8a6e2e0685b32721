#!/usr/bin/env bash
# Makes .venv (inside the workspace) with faster-fifo, for the Python side of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -c 'import faster_fifo' 2>/dev/null || .venv/bin/pip install -q faster-fifo==1.5.2
