#!/usr/bin/env bash
# The main job: builds mpqueue-top and its demo workload (mpqueue-demo, from examples/) and
# runs mpqueue-top --demo, which starts the workload — queues with producer and consumer
# processes (a bursty producer, a slow consumer that lets a bounded queue fill, a
# three-stage pipeline) — and shows it live. Press q to stop; nothing is left behind in
# shared memory. Extra arguments go to mpqueue-top (e.g. --interval 500ms).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p mpqueue-top -p mpqueue-examples --bin mpqueue-top --bin mpqueue-demo
exec target/release/mpqueue-top --demo "$@"
