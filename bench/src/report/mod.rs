//! The full run: measures every section in order and writes the report (`BENCHMARKS.md`),
//! one module per section.

mod big;
mod counters;
mod footprint;
mod header;
mod pingpong;
mod python;
mod sides;
mod targets;
mod throughput;
mod variants;

use crate::limits;
use crate::measure::Runner;
use std::fmt::Write as _;

/// Items per run and other sizes: about a second per run in the full run, far less with
/// `--quick`.
#[derive(Clone, Copy)]
pub struct Sizes {
    quick: bool,
    /// 8 B and 64 B items, mpqueue and the Rust peers.
    fast: u64,
    /// 8 B and 64 B items, the Python peers.
    py: u64,
    /// The shared-memory ring limit.
    ring: u64,
    /// 1 MiB items, mpqueue, ipc-channel and the pipe.
    big: u64,
    /// 1 MiB items, the Python peers.
    big_py: u64,
    /// Ping-pong round trips.
    rtt: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        let q = quick;
        Sizes {
            quick,
            fast: if q { 50_000 } else { 2_000_000 },
            py: if q { 10_000 } else { 200_000 },
            ring: if q { 200_000 } else { 20_000_000 },
            big: if q { 20 } else { 1000 },
            big_py: if q { 10 } else { 300 },
            rtt: if q { 500 } else { 20_000 },
        }
    }
}

/// mpqueue's figure and the raw pipe's, for a target ratio.
#[derive(Default)]
pub struct Versus {
    pub mpqueue: Option<f64>,
    pub pipe: Option<f64>,
}

/// Runs every section (one round of each figure with `quick`, else `reps`), writes the
/// report to `out` and prints it.
pub fn run(quick: bool, reps: usize, out: &str) -> anyhow::Result<()> {
    let r = Runner {
        reps: if quick { 1 } else { reps.max(1) },
    };
    let n = Sizes::new(quick);
    let mut md = String::new();

    let rtt_before = limits::line_round_trip_ns();
    let rows = throughput::measure(&r, n);
    let family = variants::measure(&r, n);
    header::write(&mut md, quick, r.reps, rtt_before)?;
    throughput::write(&mut md, &rows)?;
    variants::write(&mut md, &family)?;
    let wall = counters::wall_clock(&mut md, &r, n)?;
    let instructions = counters::instructions(&mut md, n)?;
    sides::write(&mut md, n)?;
    let big = big::write(&mut md, &r, n)?;
    let rtt = pingpong::write(&mut md, &r, n)?;
    python::write(&mut md, &r, n)?;
    footprint::memory(&mut md)?;
    footprint::observers(&mut md, n)?;
    targets::write(
        &mut md,
        &targets::Findings {
            rows: &rows,
            variants: &family,
            rtt_same: rtt.same,
            rtt_cross: rtt.cross,
            rtt_cross_p99: rtt.cross_p99,
            idle_cpu: rtt.idle_cpu,
            big,
            instructions,
            wall,
        },
    )?;

    if let Ok(analysis) = std::fs::read_to_string("bench/ANALYSIS.md") {
        writeln!(md, "\n{analysis}")?;
    }
    std::fs::write(out, &md)?;
    println!("{md}");
    Ok(())
}
