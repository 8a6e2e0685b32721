//! Consistent reads of a stats segment: a seqlock over `retire_seq` (odd while a slot is
//! being folded into the retired totals), bounded by time.

use crate::segment::Segments;
use crate::sys;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU64, fence};

/// Most process slots a stats segment can have: `Builder::max_processes` is at most this.
/// Observers refuse files that claim more.
pub(crate) const MAX_SLOTS: usize = 4096;

/// How long a reader retries while retirements keep moving counters between slots. A real
/// retirement takes microseconds; a sequence that is still odd or still changing after this
/// long belongs to a process that died or stopped in the middle of one, or to a hostile
/// writer. The reader then takes its last read as it is: the counts of the slot being
/// retired may be missing from it or counted twice.
pub(crate) const RETRY_NS: u64 = 5_000_000;

/// Runs `read` until it saw no retirement in progress, for at most [`RETRY_NS`]; after that
/// the last result is returned as it is.
pub(crate) fn read_consistent<R>(seq: &AtomicU64, read: impl Fn() -> R) -> R {
    let deadline = sys::mono_now() + RETRY_NS;
    loop {
        let before = seq.load(Acquire);
        if !before.is_multiple_of(2) {
            if sys::mono_now() >= deadline {
                return read();
            }
            std::thread::yield_now();
            continue;
        }
        let r = read();
        fence(Acquire);
        if seq.load(Relaxed) == before || sys::mono_now() >= deadline {
            return r;
        }
    }
}

/// Items ever accepted by `put`, over live, dead and retired processes.
pub(crate) fn total_puts(seg: &Segments) -> u64 {
    read_consistent(&seg.stats().retire_seq, || {
        (0..=seg.slot_count())
            .map(|i| seg.slot(i).puts.load(Acquire))
            .fold(0u64, u64::wrapping_add)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_that_never_settles_still_gives_a_read() {
        // Odd for ever (a retirer that died midway): the read happens once the time is up.
        let stuck = AtomicU64::new(1);
        let start = sys::mono_now();
        assert_eq!(read_consistent(&stuck, || 7), 7);
        assert!(sys::mono_now() >= start + RETRY_NS);
        // Changing on every read (a hostile writer): the last read is returned.
        let moving = AtomicU64::new(0);
        let n = std::cell::Cell::new(0u64);
        let r = read_consistent(&moving, || {
            moving.fetch_add(2, Relaxed);
            n.set(n.get() + 1);
            n.get()
        });
        assert_eq!(r, n.get());
        assert!(r >= 2);
    }
}
