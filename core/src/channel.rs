//! The shared channel: a byte ring of length-prefixed records with one robust write lock and
//! one robust read lock, futex wake-ups on both ends, and journals that let the next lock
//! holder repair whatever a dead holder left half done.
//!
//! # Protocol
//! - A writer holds the write lock for a whole item. An item that fits the ring is one
//!   `WHOLE` record; a larger one streams as `FIRST` (carrying the total length), `MORE`…,
//!   `LAST`. Record bytes are copied first, then `write_pos` is stored with Release: readers
//!   never see a record before it is complete.
//! - A reader holds the read lock for a whole item, copies records out and stores `read_pos`
//!   with Release after each (freeing space), and counts the item in `consumed` at the end.
//! - Journals (`wj_*`, `rj_*`) are written before each step. A lock holder that finds
//!   `wj_active`/`rj_active` set on entry knows the previous holder died inside an item and
//!   repairs: a published item gets its `committed`/`consumed` count; a half-published
//!   streamed item gets an `ABORT` record; a half-read one is skipped to its end. Each
//!   dropped item is counted once in `frames_discarded`.
//! - Positions are monotonic u64 byte counts; the ring offset is `pos & (capacity - 1)`.
//!   Every record header read from the ring is validated (length, kind, bounds) before use.

use crate::layout::{RECORD_HEADER, kind, record_size};
use crate::procs;
use crate::segment::Segments;
use crate::sys::{self, LockFailed, Locked, Wait};
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64};

/// How long a blocked side sleeps before it looks for a dead peer.
const PROBE_NS: u64 = 50_000_000;
/// Pauses between the two checks of `spin_briefly`.
const PAUSES: u32 = 1;
/// Yields of the CPU (each ~0.5 µs here, one check each) before a waiter sleeps on a futex.
const YIELDS: u32 = 128;
/// Rounds `await_room` spins before it starts yielding the CPU.
const ROOM_SPINS: u32 = 256;

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
    Broken(String),
}

/// What a read produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadStop {
    /// The deadline passed with no item.
    Deadline,
    /// Another live reader parked a streamed item: the records at the head of the ring are
    /// its, and nothing can be read until it comes back for them (or dies).
    Parked,
    /// Bytes in the ring were not valid records; they were skipped.
    Corrupt(String),
    /// The segment is unusable.
    Broken(String),
}

/// A streamed item this process was reading when its `get` timed out while the writer
/// still lived: the bytes read so far, kept for this process's next `get`.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    bytes: Vec<u8>,
    total: u64,
}

/// The reading process: its stats slot and the item it parked, if any.
pub(crate) struct Reader<'r> {
    /// Its stats slot.
    pub slot: usize,
    /// The item it parked (see [`Partial`]).
    pub parked: &'r mut Option<Partial>,
}

/// What a reader found parked at the head of the ring.
enum Unpark {
    /// Its own item, resumed.
    Resumed(Partial),
    /// A dead parker's item, now being skipped.
    Skipped,
    /// A live reader's item: not for this one.
    Theirs,
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
    fn stop(&self, read_pos: u64) -> Option<WriteStop> {
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

/// A futex-based event on one word: bit 0 says that someone sleeps (or is about to sleep)
/// on the word's current value, the other bits count wake-ups. A sleeper sets the bit with a
/// CAS and sleeps on the value it wrote; a waker bumps the count (clearing the bit) and makes
/// the system call only if the bit was set, so one sleep costs at most one wake-up call
/// however often the condition changes meanwhile. Registration and the value slept on are
/// one word, so no wake-up can fall between them (the waiter bit of Drepper's "Futexes Are
/// Tricky", mutex 2).
pub(crate) struct Event<'a> {
    pub seq: &'a AtomicU32,
}

impl Event<'_> {
    /// Wakes the sleepers, if any. The caller has just made the condition true with a SeqCst
    /// store (or RMW): with the SeqCst load here and the SeqCst CAS in `sleep` (followed by
    /// the sleeper's SeqCst check of the condition), either the sleeper sees the new state
    /// or this sees its bit.
    pub(crate) fn wake(&self) {
        let v = self.seq.load(SeqCst);
        // A failed CAS means another waker bumped the word (and woke the sleepers) first.
        if v & 1 != 0
            && self
                .seq
                .compare_exchange(v, v.wrapping_add(1), SeqCst, Relaxed)
                .is_ok()
        {
            sys::futex_wake(self.seq, i32::MAX);
        }
    }

    /// Sleeps until woken or `until`, unless `ready()` holds after registering.
    pub(crate) fn sleep(&self, until: Option<u64>, ready: impl Fn() -> bool) {
        let slept_on = self.register();
        // `ready()` loads with SeqCst (see `wake`).
        if !ready() {
            sys::futex_wait(self.seq, slept_on, until);
        }
    }

    /// Sets the waiter bit on the current value (unless set) and returns the value to sleep
    /// on: any `wake` after this changes the word, so a sleep on it cannot miss that wake.
    fn register(&self) -> u32 {
        loop {
            let v = self.seq.load(SeqCst);
            if v & 1 != 0 {
                return v; // someone else registered on this value already
            }
            if self
                .seq
                .compare_exchange_weak(v, v | 1, SeqCst, Relaxed)
                .is_ok()
            {
                return v | 1;
            }
        }
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
    fn idle_ns(&self, read_pos: u64) -> u64 {
        let now = sys::mono_now();
        let (pos, since) = self.last.get();
        if since == 0 || pos != read_pos {
            self.last.set((read_pos, now));
            return 0;
        }
        now - since
    }
}

/// Checks `ready()` twice, a pause apart (no system call, no clock); true if it held. A wait
/// this short does not count as blocking in the stats.
///
/// Longer waits check between yields of the CPU (`spin_for`), ~0.5 µs apart: when a
/// consumer is faster than its producer, checks a few pauses apart would pull the
/// producer's `write_pos` line away on every item, and the producer would pay a cross-core
/// transfer per item (on this VM that made 1→1 up to three times slower); a yield also lets
/// a peer on the same CPU run.
pub(crate) fn spin_briefly(ready: impl Fn() -> bool) -> bool {
    if ready() {
        return true;
    }
    for _ in 0..PAUSES {
        std::hint::spin_loop();
    }
    ready()
}

/// Spins, then yields the CPU a number of times, for `ready()`; true if it held.
pub(crate) fn spin_for(ready: impl Fn() -> bool) -> bool {
    if spin_briefly(&ready) {
        return true;
    }
    for _ in 0..YIELDS {
        if ready() {
            return true;
        }
        std::thread::yield_now();
    }
    ready()
}

fn passed(deadline: Option<u64>) -> bool {
    deadline.is_some_and(|d| sys::mono_now() >= d)
}

fn slice(deadline: Option<u64>) -> u64 {
    let probe = sys::mono_now() + PROBE_NS;
    deadline.map_or(probe, |d| d.min(probe))
}

/// The ring of one queue, borrowed from its segments.
pub(crate) struct Channel<'a> {
    seg: &'a Segments,
    base: *mut u8,
    cap: u64,
    max_item: u64,
}

/// Holds the write lock; unlocks on drop.
pub(crate) struct WriteGuard<'c, 'a>(&'c Channel<'a>);

impl Drop for WriteGuard<'_, '_> {
    fn drop(&mut self) {
        self.0.seg.data().write_lock.unlock();
    }
}

/// Holds the read lock; unlocks on drop.
pub(crate) struct ReadGuard<'c, 'a>(&'c Channel<'a>);

impl Drop for ReadGuard<'_, '_> {
    fn drop(&mut self) {
        self.0.seg.data().read_lock.unlock();
    }
}

impl<'a> Channel<'a> {
    /// The ring of `seg`, for a process whose items are at most `max_item` bytes (its own
    /// limit, never one read from shared memory unchecked).
    pub(crate) fn new(seg: &'a Segments, max_item: u64) -> Self {
        let (base, cap) = seg.ring();
        Channel {
            seg,
            base,
            cap,
            max_item,
        }
    }

    /// Bytes the ring holds.
    pub(crate) fn capacity(&self) -> u64 {
        self.cap
    }

    // ---- raw ring access -------------------------------------------------------------------

    fn copy_in(&self, pos: u64, src: &[u8]) {
        let off = (pos & (self.cap - 1)) as usize;
        let first = src.len().min(self.cap as usize - off);
        // SAFETY: off < cap and first <= cap - off, so the first copy stays in the ring;
        // src.len() <= cap (callers write at most one record), so the rest fits at the start.
        // The bytes are not yet published (beyond write_pos), so no reader reads them.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.base, src.len() - first);
        }
    }

    fn copy_out(&self, pos: u64, dst: &mut [u8]) {
        // SAFETY: `dst` is valid for writes of its own length.
        unsafe { self.copy_out_raw(pos, dst.as_mut_ptr(), dst.len()) }
    }

    /// Replaces `out`'s contents with the `len` bytes at `pos` (without zeroing them first).
    fn copy_out_to_vec(&self, pos: u64, len: usize, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(len);
        // SAFETY: `out` has room for `len` bytes after `reserve`; the copy initialises all
        // of them before `set_len`.
        unsafe {
            self.copy_out_raw(pos, out.as_mut_ptr(), len);
            out.set_len(len);
        }
    }

    /// Copies the `len` ring bytes at `pos` (wrapping at the end) to `dst`.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `len` bytes and must not overlap the ring.
    unsafe fn copy_out_raw(&self, pos: u64, dst: *mut u8, len: usize) {
        let off = (pos & (self.cap - 1)) as usize;
        let first = len.min(self.cap as usize - off);
        // SAFETY: as in copy_in, both copies stay inside the ring (len <= cap, checked by the
        // record validation); the caller vouches for `dst`. The bytes are published and not
        // yet consumed, so no writer overwrites them until read_pos moves past them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off), dst, first);
            std::ptr::copy_nonoverlapping(self.base, dst.add(first), len - first);
        }
    }

    /// The 8-byte record header at `pos` as one word (`pos` is 8-aligned, so a header
    /// never wraps).
    fn header_word(&self, pos: u64) -> &AtomicU64 {
        let off = (pos & (self.cap - 1) & !7) as usize;
        // SAFETY: off is 8-aligned and off + 8 <= cap (cap is a multiple of 8), inside the
        // ring, whose start is page-aligned; AtomicU64 is valid for any bits.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    fn write_header(&self, pos: u64, len: u32, kind: u32) {
        // Relaxed: the record is published later by the Release/SeqCst store of write_pos.
        self.header_word(pos)
            .store(u64::from(len) | (u64::from(kind) << 32), Relaxed);
    }

    fn read_header(&self, pos: u64) -> (u32, u32) {
        // Relaxed: the caller loaded write_pos (Acquire/SeqCst) past this record.
        let w = self.header_word(pos).load(Relaxed);
        (w as u32, (w >> 32) as u32)
    }

    /// Whether the ring has unread bytes. Checks the readers' cached `write_pos` first, so
    /// a backlog is seen without touching the writers' cache line.
    pub(crate) fn has_data(&self) -> bool {
        let d = self.seg.data();
        let rp = d.read_pos.load(SeqCst);
        d.reader_write_pos.load(Relaxed) != rp || d.write_pos.load(SeqCst) != rp
    }

    /// Whether a record for `len` bytes fits in the free space now: a lock-free hint for a
    /// writer deciding whether to wait a little (the write itself checks again).
    pub(crate) fn room_for(&self, len: usize) -> bool {
        self.free_hint() >= record_size(len as u64)
    }

    /// Free bytes now, read without the write lock (0 if the positions look corrupt).
    fn free_hint(&self) -> u64 {
        let d = self.seg.data();
        let used = d
            .write_pos
            .load(Relaxed)
            .wrapping_sub(d.read_pos.load(Relaxed));
        self.cap.saturating_sub(used)
    }

    /// The free space a writer that found the ring full waits for: room for its record and
    /// at least an eighth of the ring. Writing each record into the space the reader has
    /// just freed would put writer and reader on the same cache lines for every item.
    fn refill_mark(&self, need: u64) -> u64 {
        need.max(self.cap / 8).min(self.cap)
    }

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

    /// Bytes free for the writer (caller holds the write lock), re-reading `read_pos` only
    /// when the cached view shows less than `need`.
    fn free_at_least(&self, need: u64) -> Result<u64, WriteStop> {
        let d = self.seg.data();
        let wp = d.write_pos.load(Relaxed);
        let cached = wp.wrapping_sub(d.writer_read_pos.load(Relaxed));
        if cached <= self.cap && self.cap - cached >= need {
            return Ok(self.cap - cached);
        }
        self.free_bytes()
    }

    fn free_bytes(&self) -> Result<u64, WriteStop> {
        let d = self.seg.data();
        let rp = d.read_pos.load(SeqCst);
        d.writer_read_pos.store(rp, Relaxed);
        let used = d.write_pos.load(Relaxed).wrapping_sub(rp);
        if used > self.cap {
            return Err(WriteStop::Broken("ring positions are corrupt".into()));
        }
        Ok(self.cap - used)
    }

    fn data_event(&self) -> Event<'_> {
        Event {
            seq: &self.seg.data().data_seq,
        }
    }

    fn space_event(&self) -> Event<'_> {
        Event {
            seq: &self.seg.data().space_seq,
        }
    }

    fn publish_write(&self, new_pos: u64) {
        let d = self.seg.data();
        // SeqCst (a Release that also orders before `wake`'s loads): publishes the record
        // bytes; pairs with the Acquire/SeqCst loads of write_pos.
        d.write_pos.store(new_pos, SeqCst);
        self.data_event().wake();
    }

    fn publish_read(&self, new_pos: u64) {
        let d = self.seg.data();
        // SeqCst (Release + ordered before `wake`): the bytes were copied out before; pairs
        // with the load in free_bytes.
        d.read_pos.store(new_pos, SeqCst);
        // Wake a writer only once it has the space it waits for (SeqCst: pairs with the
        // store in `sleep_for_space`, so a new target is never missed for an old one).
        if new_pos >= d.space_target.load(SeqCst) {
            self.space_event().wake();
        }
    }

    // ---- write side ------------------------------------------------------------------------

    /// Takes the write lock (repairing after a dead holder).
    pub(crate) fn lock_write(
        &self,
        deadline: Option<u64>,
    ) -> Result<WriteGuard<'_, 'a>, WriteStop> {
        let d = self.seg.data();
        match d.write_lock.lock(deadline) {
            Ok(state) => Ok(self.enter_write(state)),
            Err(LockFailed::TimedOut) => Err(WriteStop::Deadline),
            Err(LockFailed::Broken(e)) => Err(WriteStop::Broken(format!("write lock: errno {e}"))),
        }
    }

    /// Takes the write lock for a writer with `lim`: in slices, so that the deadline, a cancel
    /// and (while flushing) the stall limit all cut the wait short, even when the holder is
    /// stopped with SIGSTOP.
    pub(crate) fn lock_write_limited(
        &self,
        lim: &WriteLimits<'_>,
    ) -> Result<WriteGuard<'_, 'a>, WriteStop> {
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
    pub(crate) fn try_lock_write(&self) -> Option<WriteGuard<'_, 'a>> {
        self.seg
            .data()
            .write_lock
            .try_lock()
            .ok()
            .map(|state| self.enter_write(state))
    }

    fn enter_write(&self, state: Locked) -> WriteGuard<'_, 'a> {
        let d = self.seg.data();
        if state == Locked::OwnerDied {
            self.seg.stats().lock_recoveries.fetch_add(1, Relaxed);
            d.write_lock.mark_consistent();
        }
        let guard = WriteGuard(self);
        if d.wj_active.load(Relaxed) != 0 {
            self.repair_write();
        }
        guard
    }

    /// The previous write-lock holder stopped inside an item (it died, or gave up mid-stream).
    fn repair_write(&self) {
        let d = self.seg.data();
        let wp = d.write_pos.load(Relaxed);
        let fin = d.wj_final.load(Relaxed);
        if fin != 0 && wp >= fin {
            // Published in full: make sure its producer's `committed` counts it.
            let slot = self.seg.slot(d.wj_slot.load(Relaxed) as usize);
            let before = d.wj_committed.load(Relaxed);
            let _ = slot
                .committed
                .compare_exchange(before, before + 1, Relaxed, Relaxed);
        } else if wp != d.wj_start.load(Relaxed) {
            // Part of a streamed item is published: end it with an ABORT record. If there is
            // no room yet, leave the journal set; the next holder tries again.
            match self.free_bytes() {
                Ok(free) if free >= RECORD_HEADER => {
                    self.write_header(wp, 0, kind::ABORT);
                    self.publish_write(wp + RECORD_HEADER);
                }
                _ => return,
            }
        }
        d.wj_active.store(0, Relaxed);
    }

    /// Whether an item of `len` bytes goes into the ring as one record (else it streams).
    pub(crate) fn fits_whole(&self, len: usize) -> bool {
        record_size(len as u64) <= self.cap
    }

    /// Whether an earlier writer's half-published item still awaits its ABORT record.
    pub(crate) fn repair_pending(&self) -> bool {
        self.seg.data().wj_active.load(Relaxed) != 0
    }

    /// Writes `frame` as one item if the ring has room for it now. Caller holds the lock.
    /// Refuses while an earlier item still awaits its ABORT (`write` waits for room for it).
    pub(crate) fn try_write(&self, _g: &WriteGuard<'_, 'a>, frame: &[u8], slot: usize) -> bool {
        let need = record_size(frame.len() as u64);
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
        self.write_record(wp, kind::WHOLE, &[], frame);
        d.wj_final.store(wp + need, Relaxed);
        self.publish_write(wp + need);
        self.end_journal(slot, committed, frame.len());
        true
    }

    fn begin_journal(&self, wp: u64, slot: usize, committed: u64) {
        let d = self.seg.data();
        d.wj_final.store(0, Relaxed);
        d.wj_start.store(wp, Relaxed);
        d.wj_slot.store(slot as u64, Relaxed);
        d.wj_committed.store(committed, Relaxed);
        // Relaxed is enough for the journal: it is read only by the next holder of the write
        // lock, which the lock (or the kernel's robust-list hand-over) orders after these.
        d.wj_active.store(1, Relaxed);
    }

    fn end_journal(&self, slot: usize, committed: u64, len: usize) {
        let s = self.seg.slot(slot);
        s.committed.store(committed + 1, Relaxed);
        // Written only under the write lock: a load and a store, no locked instruction.
        let bytes = s.committed_bytes.load(Relaxed);
        s.committed_bytes.store(bytes + len as u64, Relaxed);
        self.seg.data().wj_active.store(0, Relaxed);
    }

    fn write_record(&self, pos: u64, kind: u32, prefix: &[u8], data: &[u8]) {
        let len = prefix.len() + data.len();
        self.write_header(pos, len as u32, kind);
        self.copy_in(pos + RECORD_HEADER, prefix);
        self.copy_in(pos + RECORD_HEADER + prefix.len() as u64, data);
    }

    /// Writes `frame` as one item, waiting for space as needed. Caller holds the lock.
    /// On `Err` nothing of the item stays readable (a half-streamed item is aborted).
    pub(crate) fn write(
        &self,
        g: &WriteGuard<'_, 'a>,
        frame: &[u8],
        slot: usize,
        lim: &WriteLimits<'_>,
    ) -> Result<(), WriteStop> {
        // An earlier writer's half-published item must be ended (ABORT) before anything
        // else is written: wait for room for that record first.
        while self.seg.data().wj_active.load(Relaxed) != 0 {
            self.wait_space(RECORD_HEADER, lim)?;
            self.repair_write();
        }
        let n = frame.len() as u64;
        let whole = record_size(n);
        if whole <= self.cap {
            self.wait_space(whole, lim)?;
            let ok = self.try_write(g, frame, slot);
            debug_assert!(ok, "space was available");
            return if ok {
                Ok(())
            } else {
                Err(WriteStop::Broken("ring positions moved".into()))
            };
        }
        // Streamed: FIRST (with the total length), MORE…, LAST. Each chunk waits for at least
        // half the ring (or what is left of the item) so pieces stay large.
        let d = self.seg.data();
        let s = self.seg.slot(slot);
        let committed = s.committed.load(Relaxed);
        self.begin_journal(d.write_pos.load(Relaxed), slot, committed);
        let total = n.to_le_bytes();
        let mut off = 0usize;
        let mut first = true;
        while first || off < frame.len() {
            let prefix: &[u8] = if first { &total } else { &[] };
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
            let kind = if first {
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
                d.wj_final.store(wp + size, Relaxed);
            }
            self.publish_write(wp + size);
            off += part;
            first = false;
        }
        self.end_journal(slot, committed, frame.len());
        Ok(())
    }

    /// Waits until `need` bytes are free, holding the write lock (between the pieces of a
    /// streamed item, or for a dead writer's ABORT record). While waiting, looks for a
    /// reader that died inside an item (so its leftovers get skipped) and for a stall.
    fn wait_space(&self, need: u64, lim: &WriteLimits<'_>) -> Result<u64, WriteStop> {
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
    fn sleep_for_space(&self, want: u64, deadline: Option<u64>, ready: impl Fn() -> bool) {
        let d = self.seg.data();
        // Readers wake us once read_pos reaches this: `want` bytes free. SeqCst: pairs with
        // the load in `publish_read`.
        d.space_target.store(
            (d.write_pos.load(Relaxed) + want).saturating_sub(self.cap),
            SeqCst,
        );
        self.space_event().sleep(Some(slice(deadline)), ready);
    }

    /// If the read lock's holder died, repair its journal now.
    fn probe_reader(&self) {
        if let Ok(state) = self.seg.data().read_lock.try_lock() {
            drop(self.enter_read(state));
        }
    }

    // ---- read side -------------------------------------------------------------------------

    /// Waits (without the read lock) until the ring has unread bytes or `deadline` passes.
    pub(crate) fn wait_data(&self, deadline: Option<u64>) -> bool {
        if self.has_data() || spin_for(|| self.has_data()) {
            return true;
        }
        loop {
            self.data_event().sleep(deadline, || self.has_data());
            if self.has_data() {
                return true;
            }
            if passed(deadline) {
                return false;
            }
        }
    }

    /// Takes the read lock (repairing after a dead holder).
    pub(crate) fn lock_read(&self, deadline: Option<u64>) -> Result<ReadGuard<'_, 'a>, ReadStop> {
        match self.seg.data().read_lock.lock(deadline) {
            Ok(state) => Ok(self.enter_read(state)),
            Err(LockFailed::TimedOut) => Err(ReadStop::Deadline),
            Err(LockFailed::Broken(e)) => Err(ReadStop::Broken(format!("read lock: errno {e}"))),
        }
    }

    fn enter_read(&self, state: Locked) -> ReadGuard<'_, 'a> {
        let d = self.seg.data();
        if state == Locked::OwnerDied {
            self.seg.stats().lock_recoveries.fetch_add(1, Relaxed);
            d.read_lock.mark_consistent();
        }
        if d.rj_active.load(Relaxed) != 0 {
            self.repair_read();
        }
        ReadGuard(self)
    }

    /// The previous read-lock holder died inside an item.
    fn repair_read(&self) {
        let d = self.seg.data();
        let h = self.seg.stats();
        let fin = d.rj_final.load(Relaxed);
        if fin != 0 && d.read_pos.load(Relaxed) >= fin {
            // It took the item out in full: count it as consumed (the item went with it).
            let before = d.rj_consumed.load(Relaxed);
            let _ = h
                .consumed
                .compare_exchange(before, before + 1, Release, Relaxed);
            procs::wake_capacity(self.seg);
        } else if d.rj_in_item.load(Relaxed) != 0 {
            // It was between FIRST and LAST: skip the rest of that item.
            d.skip_item.store(1, Relaxed);
        }
        d.rj_in_item.store(0, Relaxed);
        d.rj_final.store(0, Relaxed);
        d.rj_active.store(0, Relaxed);
    }

    /// Reads one item into `out`. Caller holds the read lock. Returns `Ok(false)` if there
    /// was no complete item to start (the caller waits again without the lock).
    ///
    /// If `deadline` passes in the middle of a streamed item whose writer still holds the
    /// write lock (it is slow, or stopped), the item is parked: the bytes read so far go to
    /// `me.parked`, the data header records the parker, and this process's next `get`
    /// resumes it. Other readers wait for a live parker; a dead parker's item is skipped
    /// (counted in `frames_discarded`). A dead writer's item ends with an ABORT record and
    /// is dropped.
    pub(crate) fn read(
        &self,
        _g: &ReadGuard<'_, 'a>,
        out: &mut Vec<u8>,
        deadline: Option<u64>,
        me: &mut Reader<'_>,
    ) -> Result<bool, ReadStop> {
        let d = self.seg.data();
        let h = self.seg.stats();
        d.rj_consumed.store(h.consumed.load(Relaxed), Relaxed);
        d.rj_final.store(0, Relaxed);
        d.rj_active.store(1, Relaxed);
        let mut in_item = false;
        let mut total = 0u64;
        if d.parked_slot.load(Relaxed) != 0 {
            match self.unpark(me) {
                Unpark::Resumed(p) => {
                    *out = p.bytes;
                    total = p.total;
                    in_item = true;
                }
                Unpark::Skipped => {}
                Unpark::Theirs => {
                    d.rj_active.store(0, Relaxed);
                    return Err(ReadStop::Parked);
                }
            }
        }
        loop {
            let rp = d.read_pos.load(Relaxed);
            let mut wp = d.reader_write_pos.load(Relaxed);
            if wp.wrapping_sub(rp) == 0 || wp.wrapping_sub(rp) > self.cap {
                wp = d.write_pos.load(SeqCst);
                d.reader_write_pos.store(wp, Relaxed);
            }
            let avail = wp.wrapping_sub(rp);
            if avail == 0 {
                if !in_item && d.skip_item.load(Relaxed) == 0 {
                    d.rj_active.store(0, Relaxed);
                    return Ok(false);
                }
                // Inside an item: wait for its next record while holding the lock.
                if spin_for(|| self.has_data()) {
                    continue;
                }
                self.data_event()
                    .sleep(Some(slice(deadline)), || self.has_data());
                if self.has_data() {
                    continue;
                }
                self.probe_writer();
                if passed(deadline) && !self.has_data() {
                    if in_item {
                        // The writer lives (a dead one's lock would have been repaired
                        // with an ABORT by `probe_writer`): keep the item for later.
                        self.park(me, std::mem::take(out), total);
                    }
                    d.rj_active.store(0, Relaxed);
                    return Err(ReadStop::Deadline);
                }
                continue;
            }
            if avail > self.cap || !rp.is_multiple_of(8) || avail < RECORD_HEADER {
                return Err(self.corrupt(wp, format!("ring positions {rp}..{wp} are invalid")));
            }
            let (len, kind) = self.read_header(rp);
            let size = record_size(len as u64);
            if size > avail {
                return Err(self.corrupt(wp, format!("record of {len} bytes overruns the data")));
            }
            let data_at = rp + RECORD_HEADER;
            let skipping = d.skip_item.load(Relaxed) != 0;
            match kind {
                kind::WHOLE | kind::FIRST if in_item => {
                    return Err(self.corrupt(wp, "new item inside an unfinished one".into()));
                }
                kind::WHOLE | kind::FIRST if skipping => {
                    // A reader died after the skipped item ended but before clearing the
                    // flag: the flag is stale.
                    d.skip_item.store(0, Relaxed);
                    continue;
                }
                kind::WHOLE => {
                    if len as u64 > self.max_item {
                        return Err(self.corrupt(wp, format!("item of {len} bytes over the limit")));
                    }
                    self.copy_out_to_vec(data_at, len as usize, out);
                    self.finish_item(rp + size);
                    return Ok(true);
                }
                kind::FIRST => {
                    if len < 8 {
                        return Err(self.corrupt(wp, "streamed item without a length".into()));
                    }
                    let mut t = [0u8; 8];
                    self.copy_out(data_at, &mut t);
                    total = u64::from_le_bytes(t);
                    if total > self.max_item || total < (len - 8) as u64 {
                        return Err(
                            self.corrupt(wp, format!("streamed item of {total} bytes is invalid"))
                        );
                    }
                    out.clear();
                    // The length comes from shared memory: an allocation failure is an
                    // error for this item, never an abort.
                    if out.try_reserve_exact(total as usize).is_err() {
                        return Err(
                            self.corrupt(wp, format!("no memory for an item of {total} bytes"))
                        );
                    }
                    self.append(out, data_at + 8, len as usize - 8);
                    in_item = true;
                    d.rj_in_item.store(1, Relaxed);
                    self.publish_read(rp + size);
                }
                kind::MORE | kind::LAST if in_item => {
                    if out.len() as u64 + len as u64 > total {
                        return Err(self.corrupt(wp, "streamed item longer than announced".into()));
                    }
                    self.append(out, data_at, len as usize);
                    if kind == kind::LAST {
                        if out.len() as u64 != total {
                            return Err(
                                self.corrupt(wp, "streamed item shorter than announced".into())
                            );
                        }
                        self.finish_item(rp + size);
                        return Ok(true);
                    }
                    self.publish_read(rp + size);
                }
                kind::MORE | kind::LAST => {
                    // Pieces of an item whose reader died (skip flag), or orphans left when
                    // it died just as the flag changed: drop them.
                    if kind == kind::LAST {
                        // The skipped item was published in full: it leaves the queue now.
                        d.skip_item.store(0, Relaxed);
                        self.finish_item(rp + size);
                        h.frames_discarded.fetch_add(1, Relaxed);
                        d.rj_consumed.store(h.consumed.load(Relaxed), Relaxed);
                        d.rj_active.store(1, Relaxed);
                    } else {
                        self.publish_read(rp + size);
                    }
                }
                kind::ABORT => {
                    // The writer of the current item died: drop what was read of it.
                    if in_item || skipping {
                        h.frames_discarded.fetch_add(1, Relaxed);
                    }
                    in_item = false;
                    out.clear();
                    d.skip_item.store(0, Relaxed);
                    d.rj_in_item.store(0, Relaxed);
                    self.publish_read(rp + size);
                }
                _ => {
                    return Err(self.corrupt(wp, format!("record of unknown kind {kind}")));
                }
            }
        }
    }

    /// Keeps a streamed item whose reader's deadline passed for the reader's next `get`.
    /// The journal stays consistent at every step: a death before `parked_slot` is stored
    /// leaves `rj_in_item` set (the next reader skips the item), a death after it leaves a
    /// dead parker (likewise).
    fn park(&self, me: &mut Reader<'_>, bytes: Vec<u8>, total: u64) {
        let d = self.seg.data();
        let slot = self.seg.slot(me.slot);
        *me.parked = Some(Partial { bytes, total });
        d.parked_pid.store(slot.pid.load(Relaxed), Relaxed);
        d.parked_start.store(slot.start_time.load(Relaxed), Relaxed);
        d.parked_slot.store(me.slot as u64, Relaxed);
        d.rj_in_item.store(0, Relaxed);
    }

    /// A parked item is at the head of the ring: resume it if it is ours, skip it if its
    /// parker is gone, or leave it to its live parker.
    fn unpark(&self, me: &mut Reader<'_>) -> Unpark {
        let d = self.seg.data();
        let parker = d.parked_slot.load(Relaxed) as usize;
        let (pid, start) = (d.parked_pid.load(Relaxed), d.parked_start.load(Relaxed));
        let mine = parker == me.slot && {
            let s = self.seg.slot(me.slot);
            s.pid.load(Relaxed) == pid && s.start_time.load(Relaxed) == start
        };
        if mine && let Some(p) = me.parked.take() {
            // In the item again before the parker mark goes (see `park`).
            d.rj_in_item.store(1, Relaxed);
            d.parked_slot.store(0, Relaxed);
            return Unpark::Resumed(p);
        }
        let alive = !mine && parker <= self.seg.slot_count() && {
            let s = self.seg.slot(parker);
            s.pid.load(Relaxed) == pid
                && s.start_time.load(Relaxed) == start
                && sys::liveness(pid as u32, start, s.pid_ns.load(Relaxed)) != sys::Liveness::Dead
        };
        if alive {
            return Unpark::Theirs;
        }
        // The parker is gone (or lost its bytes): the rest of its item is skipped.
        d.skip_item.store(1, Relaxed);
        d.parked_slot.store(0, Relaxed);
        Unpark::Skipped
    }

    /// Gives up this process's parked item (it detaches without coming back for it): the
    /// rest of the item is skipped by the next reader and counted in `frames_discarded`.
    pub(crate) fn abandon_parked(&self, _g: &ReadGuard<'_, 'a>, me: &mut Reader<'_>) {
        let d = self.seg.data();
        if me.parked.take().is_some() && d.parked_slot.load(Relaxed) == me.slot as u64 {
            d.skip_item.store(1, Relaxed);
            d.parked_slot.store(0, Relaxed);
        }
    }

    fn append(&self, out: &mut Vec<u8>, pos: u64, len: usize) {
        let start = out.len();
        out.resize(start + len, 0);
        self.copy_out(pos, &mut out[start..]);
    }

    /// Consumes up to `end` and counts the item; journal first so a death here is repairable.
    fn finish_item(&self, end: u64) {
        let d = self.seg.data();
        let h = self.seg.stats();
        d.rj_final.store(end, Relaxed);
        self.publish_read(end);
        h.consumed.store(d.rj_consumed.load(Relaxed) + 1, Release);
        d.rj_in_item.store(0, Relaxed);
        d.rj_active.store(0, Relaxed);
        if h.maxsize.load(Relaxed) != 0 {
            procs::wake_capacity(self.seg);
        }
    }

    /// Skips every published byte after corrupt data and counts one discarded frame.
    fn corrupt(&self, wp: u64, reason: String) -> ReadStop {
        let d = self.seg.data();
        self.publish_read(wp);
        d.skip_item.store(0, Relaxed);
        d.rj_in_item.store(0, Relaxed);
        d.rj_active.store(0, Relaxed);
        self.seg.stats().frames_discarded.fetch_add(1, Relaxed);
        ReadStop::Corrupt(reason)
    }

    /// A reader waiting inside an item: if the write lock's holder died (or is gone with the
    /// item unfinished), end the item with an ABORT record.
    fn probe_writer(&self) {
        let Some(g) = self.try_lock_write() else {
            return; // a live writer holds it
        };
        let d = self.seg.data();
        if !self.has_data() && d.wj_active.load(Relaxed) == 0 {
            // Nobody is writing and the item can never finish: abort it ourselves.
            let wp = d.write_pos.load(Relaxed);
            if matches!(self.free_bytes(), Ok(f) if f >= RECORD_HEADER) {
                self.write_header(wp, 0, kind::ABORT);
                self.publish_write(wp + RECORD_HEADER);
            }
        }
        drop(g);
    }

    /// Sleeps until `get` can make progress on capacity accounting: used by bounded `put`.
    pub(crate) fn wait_capacity(&self, until: u64, ready: impl Fn() -> bool) -> Wait {
        Event {
            seq: &self.seg.stats().cap_seq,
        }
        .sleep(Some(until), ready);
        if sys::mono_now() >= until {
            Wait::TimedOut
        } else {
            Wait::Woken
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interleaving that lost a wake-up with a separate "slept on" word: sleeper A
    /// registers, sleeper B registers and is woken, B registers again, and only then does A
    /// (preempted until now) go on. A wake now must still reach B: with one word, every
    /// registration is in the word a wake changes.
    #[test]
    fn a_late_sleeper_never_hides_a_newer_one_from_the_waker() {
        let seq = AtomicU32::new(0);
        let ev = Event { seq: &seq };
        let a = ev.register();
        let b = ev.register();
        assert_eq!(a, b, "both sleep on one value");
        ev.wake();
        assert_ne!(seq.load(SeqCst), b, "the wake changed the word B sleeps on");
        let b2 = ev.register(); // B, after taking its item, sleeps again
        // A resumes: its sleep on its old value returns at once (the word moved on), and it
        // leaves nothing behind that could hide B from the next wake.
        assert_eq!(
            sys::futex_wait(&seq, a, Some(sys::mono_now() + 10_000_000_000)),
            sys::Wait::Woken
        );
        ev.wake();
        assert_ne!(seq.load(SeqCst), b2, "the next wake reaches B");
        assert_eq!(
            sys::futex_wait(&seq, b2, Some(sys::mono_now() + 10_000_000_000)),
            sys::Wait::Woken
        );
    }

    /// A wake with nobody registered makes no system call and leaves the word as it is.
    #[test]
    fn a_wake_without_sleepers_changes_nothing() {
        let seq = AtomicU32::new(4);
        Event { seq: &seq }.wake();
        assert_eq!(seq.load(SeqCst), 4);
    }
}
