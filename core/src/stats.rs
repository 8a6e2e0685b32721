//! The one writer of a process's counters in its stats slot: every count that `put` and
//! `get` make goes through [`Counters`], and the on/off switch (`Builder::stats`,
//! `MPQUEUE_STATS=off`) is applied here and nowhere else.
//!
//! Off turns off what only observers read: roles and heartbeats, Full/Empty events,
//! timeouts, decode errors and the blocked-time histograms. What the queue itself needs is
//! always kept: `puts` and `gets` (size), `reserving` (capacity), and bytes in and out. The
//! ring's `committed` counts and `dropped` are written by the channel and by `procs`.
//! Counter adds are `Relaxed`: each slot is written only by its owner, and observers need
//! no order between counters except the one noted on `got`.

use crate::layout::{self, Histogram, ProcSlot, role};
use crate::sys;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

/// Which blocking call waited.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Blocked {
    /// `put` waited for capacity.
    Put,
    /// `get` waited for an item.
    Get,
}

/// This process's counters of one queue.
pub(crate) struct Counters<'a> {
    slot: &'a ProcSlot,
    on: bool,
}

impl<'a> Counters<'a> {
    /// The counters in `slot`, with the optional ones `on` or off.
    pub(crate) fn new(slot: &'a ProcSlot, on: bool) -> Self {
        Counters { slot, on }
    }

    /// An item `put` accepted (`bytes` encoded): counted before it can be read, so that
    /// `gets <= puts` in any snapshot. On a bounded queue its capacity unit stops being
    /// "reserving" now.
    pub(crate) fn accepted(&self, bytes: usize, bounded: bool) {
        let s = self.slot;
        let ops = s.puts.fetch_add(1, SeqCst);
        if bounded {
            s.reserving.fetch_sub(1, SeqCst);
        }
        s.bytes_put.fetch_add(bytes as u64, Relaxed);
        self.touch(role::PRODUCER, ops);
    }

    /// An item `get` returned. Called under the read lock, after `consumed`: the Release
    /// orders it after the Acquire of `write_pos` that followed the producer's count, for a
    /// reader that loads `gets` first. Only the lock's holder writes a live slot's `gets`:
    /// a load and a store, no locked instruction or fence.
    pub(crate) fn got(&self, bytes: usize) {
        let s = self.slot;
        s.gets.store(s.gets.load(Relaxed) + 1, Release);
        s.bytes_got
            .store(s.bytes_got.load(Relaxed) + bytes as u64, Relaxed);
    }

    /// A `get` started: marks the role (and, now and then, the heartbeat).
    pub(crate) fn getting(&self) {
        self.touch(role::CONSUMER, self.slot.gets.load(Relaxed));
    }

    /// Marks the role and, on every 32nd operation (and the first), the heartbeat: a clock
    /// read per operation would cost more than all the counters. Calls that block refresh
    /// it too (`waited`).
    fn touch(&self, role_bit: u64, ops: u64) {
        if !self.on {
            return;
        }
        let s = self.slot;
        if s.role.load(Relaxed) & role_bit == 0 {
            s.role.fetch_or(role_bit, Relaxed);
            s.heartbeat_ns.store(sys::coarse_now(), Relaxed);
        } else if ops.is_multiple_of(32) {
            s.heartbeat_ns.store(sys::coarse_now(), Relaxed);
        }
    }

    /// A call that found the queue full (`Put`) or empty (`Get`).
    pub(crate) fn found(&self, which: Blocked) {
        if self.on {
            match which {
                Blocked::Put => &self.slot.full_events,
                Blocked::Get => &self.slot.empty_events,
            }
            .fetch_add(1, Relaxed);
        }
    }

    /// A call whose deadline passed.
    pub(crate) fn timed_out(&self, which: Blocked) {
        if self.on {
            match which {
                Blocked::Put => &self.slot.put_timeouts,
                Blocked::Get => &self.slot.get_timeouts,
            }
            .fetch_add(1, Relaxed);
        }
    }

    /// An item that could not be decoded.
    pub(crate) fn decode_error(&self) {
        if self.on {
            self.slot.decode_errors.fetch_add(1, Relaxed);
        }
    }

    /// A call that blocked from `since` (monotonic ns) until now: one observation in its
    /// histogram, and a heartbeat.
    pub(crate) fn waited(&self, which: Blocked, since: u64) {
        if !self.on {
            return;
        }
        let now = sys::mono_now();
        self.slot.heartbeat_ns.store(now, Relaxed);
        let h: &Histogram = match which {
            Blocked::Put => &self.slot.put_blocked,
            Blocked::Get => &self.slot.get_blocked,
        };
        let ns = now.saturating_sub(since);
        h.count.fetch_add(1, Relaxed);
        h.sum_ns.fetch_add(ns, Relaxed);
        h.buckets[layout::bucket_of(ns)].fetch_add(1, Relaxed);
    }
}
