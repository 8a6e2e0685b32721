//! Consistent reads of a stats segment: a seqlock over `retire_seq` (odd while a slot is
//! being folded into the retired totals).

use crate::segment::Segments;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU64, fence};

/// Runs `read` until it saw no retirement in progress (bounded: after many tries the last
/// result is returned as is).
pub(crate) fn read_consistent<R>(seq: &AtomicU64, read: impl Fn() -> R) -> R {
    for _ in 0..10_000 {
        let before = seq.load(Acquire);
        if !before.is_multiple_of(2) {
            std::thread::yield_now();
            continue;
        }
        let r = read();
        fence(Acquire);
        if seq.load(Relaxed) == before {
            return r;
        }
    }
    read()
}

/// Items ever accepted by `put`, over live, dead and retired processes.
pub(crate) fn total_puts(seg: &Segments) -> u64 {
    read_consistent(&seg.stats().retire_seq, || {
        (0..=seg.slot_count())
            .map(|i| seg.slot(i).puts.load(Acquire))
            .fold(0u64, u64::wrapping_add)
    })
}
