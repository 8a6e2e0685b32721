//! The one writer of a process's counters in its stats slot: every count that `put` and
//! `get` make goes through [`Counters`], and the on/off switch (`Builder::stats`,
//! `MPQUEUE_STATS=off`) is applied here and nowhere else.
//!
//! Off turns off what only observers read, and every clock read of the fast path: roles,
//! last put and get times (heartbeats), the put timeline and put stamps, Full/Empty events,
//! timeouts, decode errors, and the blocked-time and time-in-queue histograms. What the queue itself needs is
//! always kept: `puts` and `gets` (size), `reserving` (capacity), and bytes in and out. The
//! ring's `committed` counts and `dropped` are written by the channel and by `procs`.
//! Counter adds are `Relaxed`: each slot is written only by its owner, and observers need
//! no order between counters except the one noted on `got`.

use crate::capacity::total_puts;
use crate::layout::{self, Histogram, ProcSlot, STAMP_EVERY, role};
use crate::segment::{Segments, SlotIndex};
use crate::sys;
use crate::timeline;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

/// Which blocking call waited.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Blocked {
    /// `put` waited for capacity.
    Put,
    /// `get` waited for an item.
    Get,
}

/// When `put` accepted an item, as [`Counters::accepted`] noted it (zero with the counters
/// off): one word, the coarse monotonic time with its lowest bit saying whether the item is
/// one of the sampled ones whose time in queue is measured (a nanosecond less precision for
/// one word fewer to carry on every put).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PutTime(u64);

impl PutTime {
    #[inline(always)]
    fn new(at_ns: u64, stamped: bool) -> Self {
        PutTime(at_ns & !1 | u64::from(stamped))
    }

    /// Monotonic ns (coarse; 0 with the counters off), for the age of the item while it
    /// waits in a feeder buffer.
    #[inline]
    pub(crate) fn at_ns(self) -> u64 {
        self.0 & !1
    }

    /// The item's put stamp (`CLOCK_MONOTONIC` ns), if it is one of the sampled items.
    #[inline]
    pub(crate) fn stamp(self) -> Option<u64> {
        (self.0 & 1 != 0).then_some(self.0 & !1)
    }
}

/// This process's counters of one queue.
pub(crate) struct Counters<'a> {
    seg: &'a Segments,
    slot: &'a ProcSlot,
    /// This process's note of when the next period of the put timeline starts (see
    /// `timeline::note_put`): puts before it skip the timeline.
    next_point: &'a AtomicU64,
    on: bool,
}

impl<'a> Counters<'a> {
    /// The counters in `seg`'s slot `slot`, with the optional ones `on` or off;
    /// `next_point` is the process's own word for [`timeline::note_put`].
    pub(crate) fn new(
        seg: &'a Segments,
        slot: SlotIndex,
        next_point: &'a AtomicU64,
        on: bool,
    ) -> Self {
        Counters {
            seg,
            slot: seg.slot(slot),
            next_point,
            on,
        }
    }

    /// An item `put` accepted (`bytes` encoded): counted before it can be read, so that
    /// `gets <= puts` in any snapshot. On a bounded queue its capacity unit stops being
    /// "reserving" now. With the counters on, also when (see [`put_time`](Self::put_time)).
    #[inline]
    pub(crate) fn accepted(&self, bytes: usize, bounded: bool) -> PutTime {
        let s = self.slot;
        let ops = s.puts.fetch_add(1, SeqCst);
        if bounded {
            s.reserving.fetch_sub(1, SeqCst);
        }
        s.bytes_put.fetch_add(bytes as u64, Relaxed);
        if self.on {
            self.put_time(ops)
        } else {
            PutTime::default()
        }
    }

    /// The time of the process's put number `ops` (0-based): its last put, the queue's put
    /// timeline, and on every [`STAMP_EVERY`]th put a put stamp for the item to carry. One
    /// coarse clock read per put (a fine one when stamped).
    #[inline(always)]
    fn put_time(&self, ops: u64) -> PutTime {
        let s = self.slot;
        let stamped = ops.is_multiple_of(STAMP_EVERY);
        let now = if stamped {
            sys::mono_now()
        } else {
            sys::coarse_now()
        };
        if now >= self.next_point.load(Relaxed) {
            // This item is counted already: the items before it are one fewer.
            let before = || total_puts(self.seg).wrapping_sub(1);
            let next = timeline::note_put(&self.seg.stats().timeline, now, before);
            self.next_point.store(next, Relaxed);
            // The process's first put always gets here (`next_point` starts at 0).
            self.mark(role::PRODUCER);
        }
        s.last_put_ns.store(now, Relaxed);
        PutTime::new(now, stamped)
    }

    /// An item `get` returned. Called under the read lock, after `consumed`: the Release
    /// orders it after the Acquire of `write_pos` that followed the producer's count, for a
    /// reader that loads `gets` first. Only the lock's holder writes a live slot's `gets`:
    /// a load and a store, no locked instruction or fence.
    #[inline]
    pub(crate) fn got(&self, bytes: usize) {
        self.got_many(1, bytes);
    }

    /// `items` items of `bytes` bytes in all, got under the read lock (see `got`).
    #[inline]
    pub(crate) fn got_many(&self, items: u64, bytes: usize) {
        let s = self.slot;
        s.gets.store(s.gets.load(Relaxed) + items, Release);
        s.bytes_got
            .store(s.bytes_got.load(Relaxed) + bytes as u64, Relaxed);
    }

    /// The time of a `get` that returned an item (after the read lock is let go): the
    /// process's last get and, for an item with a put stamp, its time in queue.
    #[inline]
    pub(crate) fn got_at(&self, stamp: Option<u64>) {
        if self.on {
            self.get_time(stamp);
        }
    }

    #[inline]
    fn get_time(&self, stamp: Option<u64>) {
        let s = self.slot;
        let now = match stamp {
            Some(put) => {
                let now = sys::mono_now();
                observe(&s.wait, now.saturating_sub(put));
                now
            }
            None => sys::coarse_now(),
        };
        s.last_get_ns.store(now, Relaxed);
    }

    /// The time of a batch `get` that returned items with these put stamps: one clock read
    /// for all of them.
    pub(crate) fn got_many_at(&self, stamps: &[Option<u64>]) {
        if !self.on {
            return;
        }
        let s = self.slot;
        let now = if stamps.iter().any(Option::is_some) {
            sys::mono_now()
        } else {
            sys::coarse_now()
        };
        for put in stamps.iter().flatten() {
            observe(&s.wait, now.saturating_sub(*put));
        }
        s.last_get_ns.store(now, Relaxed);
    }

    /// A `JoinableQueue::task_done`: counted only while this process has marked fewer items
    /// done than it got (false: one too many).
    pub(crate) fn task_done(&self) -> bool {
        let s = self.slot;
        let mut done = s.tasks_done.load(SeqCst);
        loop {
            if done >= s.gets.load(SeqCst) {
                return false;
            }
            match s
                .tasks_done
                .compare_exchange(done, done + 1, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => done = now,
            }
        }
    }

    /// A `get` started: marks the role.
    pub(crate) fn getting(&self) {
        if self.on {
            self.mark(role::CONSUMER);
        }
    }

    /// Marks the role (once).
    #[inline(always)]
    fn mark(&self, role_bit: u64) {
        let s = self.slot;
        if s.role.load(Relaxed) & role_bit == 0 {
            s.role.fetch_or(role_bit, Relaxed);
        }
    }

    /// Notes that the oldest item in this process's feeder buffer was put at `at_ns` (0:
    /// the buffer is empty).
    pub(crate) fn buffered_since(&self, at_ns: u64) {
        if self.on {
            self.slot.buffered_since_ns.store(at_ns, Relaxed);
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
    /// histogram.
    pub(crate) fn waited(&self, which: Blocked, since: u64) {
        if !self.on {
            return;
        }
        let h: &Histogram = match which {
            Blocked::Put => &self.slot.put_blocked,
            Blocked::Get => &self.slot.get_blocked,
        };
        observe(h, sys::mono_now().saturating_sub(since));
    }
}

/// One observation of `ns` nanoseconds in `h`.
fn observe(h: &Histogram, ns: u64) {
    h.count.fetch_add(1, Relaxed);
    h.sum_ns.fetch_add(ns, Relaxed);
    h.buckets[layout::bucket_of(ns)].fetch_add(1, Relaxed);
}
