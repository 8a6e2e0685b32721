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
mod batch;
mod read;
mod repair;
mod write;

pub(crate) use read::{Partial, ReadStop, Reader};
pub(crate) use write::{Progress, WriteLimits, WriteStop};

use crate::error::BrokenKind;
use crate::layout::record_size;
use crate::segment::Segments;
use crate::sync::Event;
use crate::sys;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// How long a blocked side sleeps before it looks for a dead peer.
const PROBE_NS: u64 = 50_000_000;
/// Rounds `await_room` spins before it starts yielding the CPU.
const ROOM_SPINS: u32 = 256;

fn passed(deadline: Option<u64>) -> bool {
    deadline.is_some_and(|d| sys::mono_now() >= d)
}

/// The end of the next wait slice: the deadline, or the next look for a dead peer.
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
            return Err(WriteStop::Broken(
                BrokenKind::Positions,
                "ring positions are corrupt".into(),
            ));
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
}
