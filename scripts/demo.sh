#!/usr/bin/env bash
# The main job: builds the workspace and runs the demo (producers and workers in separate
# processes over shared-memory queues).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -p mpqueue-examples --example demo -- "$@"
