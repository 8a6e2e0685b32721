//! `mpqueue-bench`: mpqueue and its peers side by side, in one run on one machine, written to
//! `BENCHMARKS.md`. Every figure is the median of several runs with min and max; judge by
//! the ratios within a run (the machine is shared and noisy).
//!
//! `cargo run --release -p mpqueue-bench` (full, several minutes) or `-- --quick` (smoke);
//! the subcommands run one scenario alone, for profiling (`mpqueue-bench profile 6000000`).
//!
//! Modules: `report` writes the full run section by section, `modes` runs the subcommands,
//! `measure` turns runs into figures; the scenarios themselves are in `mpq` (mpqueue),
//! `python` (multiprocessing.Queue, faster-fifo), `ipc` (ipc-channel) and `limits` (raw
//! pipe, shared-memory ring), with mpqueue's batches and `JoinableQueue` in `variants`,
//! over the process plumbing in `shared` and the items in `items`.

mod iox;
mod ipc;
mod items;
mod limits;
mod measure;
mod modes;
mod mpq;
mod observers;
mod python;
mod report;
mod shared;
mod variants;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    about = "Side-by-side benchmarks of mpqueue and its peers; writes BENCHMARKS.md",
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Run every scenario briefly (a smoke test; the numbers mean little).
    #[arg(long)]
    quick: bool,
    /// Runs per figure (median, min and max are reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: String,
    /// Without a subcommand: every scenario, written to `--out`.
    #[command(subcommand)]
    mode: Option<Mode>,
}

/// One scenario alone, printed to stdout (for profiling, and for A/B runs).
#[derive(Subcommand)]
enum Mode {
    /// Only mpqueue PRODUCERS→CONSUMERS with 64 B items (for `perf record`).
    Profile {
        /// Items in all.
        items: u64,
        /// Producer processes.
        #[arg(long, default_value_t = 1)]
        producers: usize,
        /// Consumer processes.
        #[arg(long, default_value_t = 1)]
        consumers: usize,
        /// The queue's maxsize (0: unbounded).
        #[arg(long, default_value_t = 0)]
        maxsize: usize,
    },
    /// Only 1 MiB items through mpqueue and a raw pipe, alternately.
    Big {
        /// Items per run.
        items: u64,
        /// Runs (each prints a line).
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Only the shared-memory SPSC ring limit, 64 B items.
    Ring {
        /// Items in all.
        items: u64,
    },
    /// Only ping-pong through mpqueue, a raw pipe and iceoryx2, per placement (median/p99 µs).
    Pingpong {
        /// Round trips per placement.
        round_trips: usize,
    },
    /// Only mpqueue's batches, byte-buffer items and `JoinableQueue` next to single
    /// `put`/`get` (64 B items, unpinned), one run each, items/s.
    Variants {
        /// Items per run (batches move four times as many).
        items: u64,
        /// Items per `put_many`, most items per `get_many`.
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Only put and get 64 B items in one process (for `valgrind --tool=callgrind`, which
    /// the full run uses to count instructions per put + get).
    Instructions {
        /// Items, each put then got.
        items: u64,
        /// Whether the queue keeps its counters.
        #[arg(value_enum)]
        counters: modes::Counters,
        /// Items per `put_many`/`get_many` (1: single `put` and `get`).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// The 64 B item's type.
        #[arg(long, value_enum, default_value = "array")]
        item: modes::ItemKind,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.mode {
        None => report::run(args.quick, args.reps, &args.out),
        Some(Mode::Profile {
            items,
            producers,
            consumers,
            maxsize,
        }) => modes::profile(items, producers, consumers, maxsize),
        Some(Mode::Big { items, reps }) => modes::big(items, reps),
        Some(Mode::Ring { items }) => modes::ring(items),
        Some(Mode::Pingpong { round_trips }) => modes::pingpong(round_trips),
        Some(Mode::Variants { items, batch }) => modes::variants(items, batch),
        Some(Mode::Instructions {
            items,
            counters,
            batch,
            item,
        }) => modes::instructions(items, counters, batch, item),
    }
}
