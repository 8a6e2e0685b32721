#!/usr/bin/env bash
# The main job: builds the workspace and runs mpqueue-top with its demo workload — queues
# with producer and consumer processes (a bursty producer, a slow consumer that lets a
# bounded queue fill, a three-stage pipeline) shown live. Press q to stop; nothing is left
# behind in shared memory. Extra arguments go to mpqueue-top (e.g. --interval 500ms).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p mpqueue-top
exec target/release/mpqueue-top --demo "$@"
