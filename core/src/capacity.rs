//! Capacity for `maxsize` (Python's `BoundedSemaphore`), kept in the stats segment: `put`
//! takes a unit by raising `reserved` (a CAS against `consumed + lost`), `get` gives it back
//! by raising `consumed`, a dead process's units come back as `lost` when it is reaped.
//! `put`s that find no room sleep on the futex event `cap_seq`.

use crate::interrupt;
use crate::layout::ProcSlot;
use crate::procs;
use crate::segment::Segments;
use crate::sync;
use crate::sys;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};

/// A full queue's `put` reaps dead processes (whose units come back) this often.
const REAP_EVERY_NS: u64 = 100_000_000;

/// The capacity of one queue, as this process sees it.
pub(crate) struct Capacity<'a> {
    seg: &'a Segments,
    /// Units; 0 = unbounded (then only `size` is of use).
    maxsize: u64,
}

/// How taking a unit went, for the caller's counters.
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    /// A unit was taken (`reserving` of the slot stays raised until the item is counted).
    pub taken: bool,
    /// The queue was full at first.
    pub found_full: bool,
    /// When a real wait began (monotonic ns), if there was one.
    pub waited_since: Option<u64>,
    /// The deadline passed.
    pub timed_out: bool,
    /// The [`interruptible`](crate::interruptible) check said to stop.
    pub interrupted: bool,
}

impl<'a> Capacity<'a> {
    pub(crate) fn new(seg: &'a Segments, maxsize: u64) -> Self {
        Capacity { seg, maxsize }
    }

    /// Items accepted and not yet got, buffered ones included: `reserved` (bounded) or all
    /// slots' `puts` (unbounded), less `consumed` and `lost`.
    pub(crate) fn size(&self) -> u64 {
        let h = self.seg.stats();
        let accepted = if self.maxsize > 0 {
            h.reserved.load(Acquire)
        } else {
            total_puts(self.seg)
        };
        accepted
            .saturating_sub(h.consumed.load(Acquire))
            .saturating_sub(h.lost.load(Acquire))
    }

    fn has_room(&self, n: u64) -> bool {
        self.size().saturating_add(n) <= self.maxsize
    }

    /// Takes `n` units now if there is room for all of them. On success `slot.reserving`
    /// stays raised until the caller counts each item in `puts`: if the process dies in
    /// between, the reaper gives the units back. (Between raising `reserving` and the CAS, a
    /// death counts `n` units too many as lost: the queue then holds more, never fewer.)
    fn try_take(&self, slot: &ProcSlot, n: u64) -> bool {
        let h = self.seg.stats();
        loop {
            let r = h.reserved.load(SeqCst);
            let used = r
                .saturating_sub(h.consumed.load(SeqCst))
                .saturating_sub(h.lost.load(SeqCst));
            if used.saturating_add(n) > self.maxsize {
                return false;
            }
            slot.reserving.fetch_add(n, SeqCst);
            if h.reserved
                .compare_exchange_weak(r, r + n, SeqCst, Relaxed)
                .is_ok()
            {
                return true;
            }
            slot.reserving.fetch_sub(n, SeqCst);
        }
    }

    /// Takes `n` units of a bounded queue (all or none), waiting until `deadline`
    /// (`Some(0)`: not at all). `n` must be at most `maxsize`.
    pub(crate) fn take(&self, slot: &ProcSlot, n: u64, deadline: Option<u64>) -> Reservation {
        let mut r = Reservation::default();
        if self.try_take(slot, n) {
            r.taken = true;
            return r;
        }
        r.found_full = true;
        if deadline.is_some_and(|d| d <= sys::mono_now()) {
            r.timed_out = true;
            return r;
        }
        if sync::spin_briefly(|| self.has_room(n)) && self.try_take(slot, n) {
            r.taken = true;
            return r;
        }
        r.waited_since = Some(sys::mono_now());
        let mut reap_at = sys::mono_now() + REAP_EVERY_NS;
        loop {
            if sync::spin_for(|| self.has_room(n)) && self.try_take(slot, n) {
                r.taken = true;
                return r;
            }
            let until = reap_at.min(deadline.unwrap_or(u64::MAX));
            let slice = interrupt::slice_end(Some(until)).unwrap_or(until);
            self.seg
                .capacity_event()
                .sleep(Some(slice), || self.has_room(n));
            if self.try_take(slot, n) {
                r.taken = true;
                return r;
            }
            let now = sys::mono_now();
            if deadline.is_some_and(|d| now >= d) {
                r.timed_out = true;
                return r;
            }
            if now >= slice && interrupt::check_now() {
                r.interrupted = true;
                return r;
            }
            if now >= reap_at {
                // Units held by dead processes come back when they are reaped.
                procs::reap(self.seg, deadline);
                reap_at = sys::mono_now() + REAP_EVERY_NS;
            }
        }
    }
}

/// Items ever accepted by `put`, over live, dead and retired processes.
pub(crate) fn total_puts(seg: &Segments) -> u64 {
    sync::read_consistent(&seg.stats().retire_seq, || {
        seg.slot_indices()
            .map(|i| seg.slot(i).puts.load(Acquire))
            .fold(seg.retired().puts.load(Acquire), u64::wrapping_add)
    })
}
