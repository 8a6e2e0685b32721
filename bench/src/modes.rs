//! The subcommands: one scenario alone, its figure printed to stdout, for profiling with
//! `perf` or `valgrind --tool=callgrind` and for A/B runs of a change.

use crate::items::{B64, Item};
use crate::shared::{Placement, unpin_all};
use crate::{limits, mpq, variants};

/// Whether the queue keeps its counters (`instructions ITEMS on|off`).
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Counters {
    On,
    Off,
}

/// mpqueue `producers`→`consumers`, 64 B items, `items` in all, unpinned, counters on.
pub fn profile(
    items: u64,
    producers: usize,
    consumers: usize,
    maxsize: usize,
) -> anyhow::Result<()> {
    let tput = mpq::tput::<B64>(producers, consumers, items, Placement::Free, true, maxsize)?;
    println!("{tput:.0} items/s");
    Ok(())
}

/// `items` 1 MiB items through mpqueue, then through a raw pipe, `reps` times.
pub fn big(items: u64, reps: usize) -> anyhow::Result<()> {
    for _ in 0..reps {
        println!(
            "mpqueue {:.0} MB/s, raw pipe {:.0} MB/s",
            mpq::big(items)?,
            limits::pipe_big(items)?
        );
    }
    Ok(())
}

/// The shared-memory SPSC ring limit with `items` 64 B items.
pub fn ring(items: u64) -> anyhow::Result<()> {
    println!(
        "{:.0} items/s",
        limits::shm_ring(items, 64, Placement::Free)?
    );
    Ok(())
}

/// `round_trips` ping-pongs through mpqueue, a raw pipe and iceoryx2, per placement.
pub fn pingpong(round_trips: usize) -> anyhow::Result<()> {
    for place in [Placement::Same, Placement::Cross, Placement::Free] {
        let (m50, m99) = mpq::pingpong(round_trips, place)?;
        let (p50, p99) = limits::pipe_pingpong(round_trips, place)?;
        let (i50, i99) = crate::iox::pingpong(round_trips, place)?;
        unpin_all();
        println!(
            "{}: mpqueue {m50:.1}/{m99:.1} µs, raw pipe {p50:.1}/{p99:.1} µs, iceoryx2 {i50:.1}/{i99:.1} µs",
            place.label()
        );
    }
    Ok(())
}

/// mpqueue's batches (of `batch`), `Bytes`, `Vec<u8>` and `JoinableQueue` next to single
/// `put`/`get` of `B64`, `items` 64 B items per run (batches: four times as many).
pub fn variants(items: u64, batch: usize) -> anyhow::Result<()> {
    let single = |p| mpq::tput::<B64>(p, p, items, Placement::Free, true, 0);
    println!("1→1 put/get B64: {:.0} items/s", single(1)?);
    println!(
        "1→1 batches of {batch}: {:.0} items/s",
        variants::batched::<B64>(1, 1, items * 4, batch)?
    );
    println!("4→4 put/get B64: {:.0} items/s", single(4)?);
    println!(
        "4→4 batches of {batch}: {:.0} items/s",
        variants::batched::<B64>(4, 4, items * 4, batch)?
    );
    println!(
        "1→1 Bytes: {:.0} items/s",
        mpq::tput::<mpqueue::Bytes>(1, 1, items, Placement::Free, true, 0)?
    );
    println!(
        "1→1 Vec<u8>: {:.0} items/s",
        mpq::tput::<Vec<u8>>(1, 1, items, Placement::Free, true, 0)?
    );
    println!(
        "1→1 JoinableQueue + task_done: {:.0} items/s",
        variants::joinable::<B64>(1, 1, items)?
    );
    Ok(())
}

/// Puts and gets `items` 64 B items in this process, one by one, and prints nothing: the
/// program whose instructions the full run counts under callgrind
/// (`report::counters::count_instructions`).
/// With `batch` over 1, items go in `put_many` and come out with `get_many` of `batch`;
/// `kind` picks the 64 B item type.
pub fn instructions(
    items: u64,
    counters: Counters,
    batch: usize,
    kind: ItemKind,
) -> anyhow::Result<()> {
    match kind {
        ItemKind::Array => put_get::<B64>(items, counters, batch),
        ItemKind::Bytes => put_get::<mpqueue::Bytes>(items, counters, batch),
        ItemKind::Vec => put_get::<Vec<u8>>(items, counters, batch),
    }
}

/// The 64 B item type of `instructions --item`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ItemKind {
    /// `serde_bytes::ByteArray<64>` (the suite's usual item).
    Array,
    /// `mpqueue::Bytes`.
    Bytes,
    /// `Vec<u8>`.
    Vec,
}

fn put_get<T: Item>(items: u64, counters: Counters, batch: usize) -> anyhow::Result<()> {
    let q: mpqueue::Queue<T> = mpqueue::Queue::builder()
        .stats(matches!(counters, Counters::On))
        .create()?;
    if batch <= 1 {
        for _ in 0..items {
            q.put(T::make()).map_err(|e| anyhow::anyhow!("{e}"))?;
            q.get()?;
        }
        return Ok(());
    }
    let mut left = items as usize;
    while left > 0 {
        let n = left.min(batch);
        q.put_many((0..n).map(|_| T::make()).collect())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut got = 0;
        while got < n {
            got += q.get_many(n - got)?.len();
        }
        left -= n;
    }
    Ok(())
}
