//! The write side: taking the write lock, writing an item as one record or streaming it in
//! pieces, journaling each step, and waiting for room without holding the lock.

use super::{Channel, ROOM_SPINS, passed, slice};
use crate::error::BrokenKind;
use crate::layout::{RECORD_HEADER, STAMP_LEN, kind, record_size};
use crate::segment::SlotIndex;
use crate::sync::spin_for;
use crate::sys::{self, LockFailed, Locked, MutexGuard};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// Why a write stopped before the item was published.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteStop {
    /// The deadline passed.
    Deadline,
    /// The caller's cancel check said stop (feeder shutting down without flush).
    Cancelled,
    /// No reader freed any space for the stall limit.
    Stalled,
    /// The segment is unusable.
    Broken(BrokenKind, String),
}

/// Limits for one write.
pub(crate) struct WriteLimits<'c> {
    /// Give up at this monotonic time.
    pub deadline: Option<u64>,
    /// Give up as soon as this says so.
    pub cancel: &'c dyn Fn() -> bool,
    /// While `flushing()` holds, give up after this long without a reader freeing space.
    pub stall_ns: Option<u64>,
    /// Whether the writer is flushing for close or exit (checked on every wait slice).
    pub flushing: &'c dyn Fn() -> bool,
    /// Reader progress seen across the waits of this write.
    pub progress: &'c Progress,
}

impl WriteLimits<'_> {
    /// Why the writer should stop waiting now, if it should.
    pub(super) fn stop(&self, read_pos: u64) -> Option<WriteStop> {
        if passed(self.deadline) {
            return Some(WriteStop::Deadline);
        }
        if (self.cancel)() {
            return Some(WriteStop::Cancelled);
        }
        let idle = self.progress.idle_ns(read_pos);
        (self.stall_ns.is_some_and(|s| idle >= s) && (self.flushing)())
            .then_some(WriteStop::Stalled)
    }
}

/// Tracks whether readers make progress (free ring space) while a writer waits, across
/// every wait of one write: for the lock, for room, and between pieces of an item.
pub(crate) struct Progress {
    /// `read_pos` when last seen moving, and the monotonic time of that (0 = not yet read).
    last: std::cell::Cell<(u64, u64)>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            last: std::cell::Cell::new((0, 0)),
        }
    }

    /// Nanoseconds since readers last moved `read_pos` (0 on the first call).
    pub(super) fn idle_ns(&self, read_pos: u64) -> u64 {
        let now = sys::mono_now();
        let (pos, since) = self.last.get();
        if since == 0 || pos != read_pos {
            self.last.set((read_pos, now));
            return 0;
        }
        now - since
    }
}

/// Holds the write lock; unlocks on drop.
pub(crate) struct WriteGuard<'c>(#[allow(dead_code)] MutexGuard<'c>);

impl<'a> Channel<'a> {
    /// Waits up to `budget_ns` (spinning, then yielding the CPU) for the reader to free the
    /// refill mark for a `len`-byte item, giving up sooner if no reader moves for
    /// `stall_ns`; true if the item fits in the end. For a writer that would rather hand
    /// the item to someone else than sleep.
    pub(crate) fn await_room(&self, len: usize, budget_ns: u64, stall_ns: u64) -> bool {
        let need = record_size(len as u64);
        let want = self.refill_mark(need);
        let d = self.seg.data();
        let mut last_read = d.read_pos.load(Relaxed);
        // (start, last time a reader moved), taken at the first clock read.
        let mut times: Option<(u64, u64)> = None;
        for round in 0u32.. {
            if self.free_hint() >= want {
                return true;
            }
            if round < ROOM_SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            if round % 32 == 31 {
                let now = sys::mono_now();
                let (start, moved) = times.get_or_insert((now, now));
                let rp = d.read_pos.load(Relaxed);
                if rp != last_read {
                    last_read = rp;
                    *moved = now;
                }
                if now - *start >= budget_ns || now - *moved >= stall_ns {
                    break;
                }
            }
        }
        self.free_hint() >= need
    }

    /// Takes the write lock (repairing after a dead holder).
    pub(crate) fn lock_write(&self, deadline: Option<u64>) -> Result<WriteGuard<'a>, WriteStop> {
        let d = self.seg.data();
        match d.write_lock.lock(deadline.unwrap_or(u64::MAX)) {
            Ok(state) => Ok(self.enter_write(state)),
            Err(LockFailed::TimedOut) => Err(WriteStop::Deadline),
            Err(LockFailed::Broken(e)) => Err(WriteStop::Broken(
                BrokenKind::Lock,
                format!("write lock: errno {e}"),
            )),
        }
    }

    /// Takes the write lock for a writer with `lim`: in slices, so that the deadline, a cancel
    /// and (while flushing) the stall limit all cut the wait short, even when the holder is
    /// stopped with SIGSTOP.
    pub(crate) fn lock_write_limited(
        &self,
        lim: &WriteLimits<'_>,
    ) -> Result<WriteGuard<'a>, WriteStop> {
        loop {
            if let Some(stop) = lim.stop(self.seg.data().read_pos.load(Relaxed)) {
                return Err(stop);
            }
            match self.lock_write(Some(slice(lim.deadline))) {
                Err(WriteStop::Deadline) => {}
                other => return other,
            }
        }
    }

    /// Takes the write lock only if it is free now.
    pub(crate) fn try_lock_write(&self) -> Option<WriteGuard<'a>> {
        self.seg
            .data()
            .write_lock
            .try_lock()
            .ok()
            .map(|state| self.enter_write(state))
    }

    pub(super) fn enter_write(&self, state: Locked<'a>) -> WriteGuard<'a> {
        let d = self.seg.data();
        let (guard, died) = state.into_parts();
        if died {
            self.seg.stats().lock_recoveries.fetch_add(1, Relaxed);
            guard.mark_consistent();
        }
        let guard = WriteGuard(guard);
        if d.wj_active.load(Relaxed) != 0 {
            self.repair_write();
        }
        guard
    }

    /// Whether an item of `len` bytes goes into the ring as one record, a put stamp
    /// included (else it streams).
    pub(crate) fn fits_whole(&self, len: usize) -> bool {
        record_size((STAMP_LEN + len) as u64) <= self.cap
    }

    /// Whether an earlier writer's half-published item still awaits its ABORT record.
    pub(crate) fn repair_pending(&self) -> bool {
        self.seg.data().wj_active.load(Relaxed) != 0
    }

    /// Writes `frame` as one item (with its put stamp, if any) if the ring has room for it
    /// now. Caller holds the lock. Refuses while an earlier item still awaits its ABORT
    /// (`write` waits for room for it).
    pub(crate) fn try_write(
        &self,
        _g: &WriteGuard<'_>,
        frame: &[u8],
        stamp: Option<u64>,
        slot: SlotIndex,
    ) -> bool {
        let stamp_len = if stamp.is_some() { STAMP_LEN } else { 0 };
        let need = record_size((stamp_len + frame.len()) as u64);
        if need > self.cap
            || self.seg.data().wj_active.load(Relaxed) != 0
            || !matches!(self.free_at_least(need), Ok(f) if f >= need)
        {
            return false;
        }
        let d = self.seg.data();
        let wp = d.write_pos.load(Relaxed);
        let s = self.seg.slot(slot);
        let committed = s.committed.load(Relaxed);
        self.begin_journal(wp, slot, committed);
        match stamp {
            None => self.write_record(wp, kind::WHOLE, &[], frame),
            Some(t) => self.write_record(wp, kind::WHOLE | kind::STAMPED, &t.to_le_bytes(), frame),
        }
        self.mark_final(wp + need, 1);
        self.publish_write(wp + need);
        self.end_journal(slot, committed, 1, frame.len());
        true
    }

    pub(super) fn begin_journal(&self, wp: u64, slot: SlotIndex, committed: u64) {
        let d = self.seg.data();
        d.wj_final.store(0, Relaxed);
        d.wj_start.store(wp, Relaxed);
        d.wj_slot.store(slot.get() as u64, Relaxed);
        d.wj_committed.store(committed, Relaxed);
        // Relaxed is enough for the journal: it is read only by the next holder of the write
        // lock, which the lock (or the kernel's robust-list hand-over) orders after these.
        d.wj_active.store(1, Relaxed);
    }

    /// Records in the journal that its records end at `end` and hold `items` items, before
    /// the last of them is published: a holder that dies after the publication is then
    /// counted by the next one (`repair_write`) or by its retirement.
    pub(super) fn mark_final(&self, end: u64, items: u64) {
        let d = self.seg.data();
        d.wj_items.store(items, Relaxed);
        d.wj_final.store(end, Relaxed);
    }

    /// Counts `items` items of `len` bytes in all as written by `slot`, whose count was
    /// `committed` before them, and closes the journal.
    pub(super) fn end_journal(&self, slot: SlotIndex, committed: u64, items: u64, len: usize) {
        let s = self.seg.slot(slot);
        s.committed.store(committed + items, Relaxed);
        // Written only under the write lock: a load and a store, no locked instruction.
        let bytes = s.committed_bytes.load(Relaxed);
        s.committed_bytes.store(bytes + len as u64, Relaxed);
        self.seg.data().wj_active.store(0, Relaxed);
    }

    pub(super) fn write_record(&self, pos: u64, kind: u32, prefix: &[u8], data: &[u8]) {
        let len = prefix.len() + data.len();
        self.write_header(pos, len as u32, kind);
        if !prefix.is_empty() {
            self.copy_in(pos + RECORD_HEADER, prefix);
        }
        self.copy_in(pos + RECORD_HEADER + prefix.len() as u64, data);
    }

    /// Writes `frame` as one item (with its put stamp, if any), waiting for space as
    /// needed. Caller holds the lock. On `Err` nothing of the item stays readable (a
    /// half-streamed item is aborted).
    pub(crate) fn write(
        &self,
        g: &WriteGuard<'_>,
        frame: &[u8],
        stamp: Option<u64>,
        slot: SlotIndex,
        lim: &WriteLimits<'_>,
    ) -> Result<(), WriteStop> {
        // An earlier writer's half-published item must be ended (ABORT) before anything
        // else is written: wait for room for that record first.
        while self.seg.data().wj_active.load(Relaxed) != 0 {
            self.wait_space(RECORD_HEADER, lim)?;
            self.repair_write();
        }
        let n = frame.len() as u64;
        let stamp_len = if stamp.is_some() { STAMP_LEN } else { 0 };
        let whole = record_size(n + stamp_len as u64);
        if whole <= self.cap {
            self.wait_space(whole, lim)?;
            let ok = self.try_write(g, frame, stamp, slot);
            debug_assert!(ok, "space was available");
            return if ok {
                Ok(())
            } else {
                Err(WriteStop::Broken(
                    BrokenKind::Positions,
                    "ring positions moved".into(),
                ))
            };
        }
        // Streamed: FIRST (with the put stamp if any, then the total length), MORE…, LAST.
        // Each chunk waits for at least half the ring (or what is left of the item) so
        // pieces stay large.
        let d = self.seg.data();
        let s = self.seg.slot(slot);
        let committed = s.committed.load(Relaxed);
        self.begin_journal(d.write_pos.load(Relaxed), slot, committed);
        let mut head = [0u8; STAMP_LEN + 8];
        head[..STAMP_LEN].copy_from_slice(&stamp.unwrap_or(0).to_le_bytes());
        head[STAMP_LEN..].copy_from_slice(&n.to_le_bytes());
        let first_prefix = &head[STAMP_LEN - stamp_len..];
        let mut off = 0usize;
        let mut first = true;
        while first || off < frame.len() {
            let prefix: &[u8] = if first { first_prefix } else { &[] };
            let left = (frame.len() - off + prefix.len()) as u64;
            let want = record_size(left).min(self.cap / 2);
            let free = match self.wait_space(want, lim) {
                Ok(f) => f,
                Err(stop) => {
                    if !first {
                        self.repair_write(); // appends ABORT now if there is room
                    } else {
                        d.wj_active.store(0, Relaxed);
                    }
                    return Err(stop);
                }
            };
            let room = ((free - RECORD_HEADER) & !7).min(u32::MAX as u64 & !7) as usize;
            let part = (room - prefix.len()).min(frame.len() - off);
            let kind = if first && stamp.is_some() {
                kind::FIRST | kind::STAMPED
            } else if first {
                kind::FIRST
            } else if off + part == frame.len() {
                kind::LAST
            } else {
                kind::MORE
            };
            let wp = d.write_pos.load(Relaxed);
            let size = record_size((prefix.len() + part) as u64);
            self.write_record(wp, kind, prefix, &frame[off..off + part]);
            if kind == kind::LAST {
                self.mark_final(wp + size, 1);
            }
            self.publish_write(wp + size);
            off += part;
            first = false;
        }
        self.end_journal(slot, committed, 1, frame.len());
        Ok(())
    }

    /// Waits until `need` bytes are free, holding the write lock (between the pieces of a
    /// streamed item, or for a dead writer's ABORT record). While waiting, looks for a
    /// reader that died inside an item (so its leftovers get skipped) and for a stall.
    pub(super) fn wait_space(&self, need: u64, lim: &WriteLimits<'_>) -> Result<u64, WriteStop> {
        let free = self.free_at_least(need)?;
        if free >= need {
            return Ok(free);
        }
        let want = self.refill_mark(need);
        let ready = || self.free_bytes().map_or(true, |f| f >= want);
        if spin_for(ready) {
            return self.free_bytes();
        }
        loop {
            self.sleep_for_space(want, lim.deadline, ready);
            let free = self.free_bytes()?;
            if free >= want {
                return Ok(free);
            }
            if let Some(stop) = lim.stop(self.seg.data().read_pos.load(Relaxed)) {
                return Err(stop);
            }
            self.probe_reader();
        }
    }

    /// Waits, without the write lock, until a record of `len` bytes fits (and the refill
    /// mark is free), so that a writer waiting for room never keeps other producers from
    /// writing or exiting. `Ok` when it fits now; the caller takes the lock and tries again.
    pub(crate) fn wait_room(&self, len: usize, lim: &WriteLimits<'_>) -> Result<(), WriteStop> {
        let want = self.refill_mark(record_size(len as u64));
        let ready = || self.free_hint() >= want;
        if spin_for(ready) {
            return Ok(());
        }
        loop {
            self.sleep_for_space(want, lim.deadline, ready);
            if ready() {
                return Ok(());
            }
            if let Some(stop) = lim.stop(self.seg.data().read_pos.load(Relaxed)) {
                return Err(stop);
            }
            self.probe_reader();
        }
    }

    /// Sleeps (one slice at most) until readers free `want` bytes.
    pub(super) fn sleep_for_space(
        &self,
        want: u64,
        deadline: Option<u64>,
        ready: impl Fn() -> bool,
    ) {
        let d = self.seg.data();
        // Readers wake us once read_pos reaches this: `want` bytes free. SeqCst: pairs with
        // the load in `publish_read`.
        d.space_target.store(
            (d.write_pos.load(Relaxed) + want).saturating_sub(self.cap),
            SeqCst,
        );
        self.space_event().sleep(Some(slice(deadline)), ready);
    }
}
