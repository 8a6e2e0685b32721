//! The read side: taking the read lock, reading an item record by record, parking a
//! streamed item whose reader's deadline passed, and skipping what dead processes left.

use super::{Channel, passed, slice};
use crate::error::{BrokenKind, CorruptKind};
use crate::interrupt;
use crate::layout::{RECORD_HEADER, STAMP_LEN, kind, record_size};
use crate::segment::SlotIndex;
use crate::sync::spin_for;
use crate::sys::{self, LockFailed, Locked};
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// What a read produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadStop {
    /// The deadline passed with no item.
    Deadline,
    /// The [`interruptible`](crate::interruptible) check said to stop (a streamed item
    /// being read is parked, as at the deadline).
    Interrupted,
    /// Another live reader parked a streamed item: the records at the head of the ring are
    /// its, and nothing can be read until it comes back for them (or dies).
    Parked,
    /// Bytes in the ring were not valid records; they were skipped.
    Corrupt(CorruptKind, String),
    /// The segment is unusable.
    Broken(BrokenKind, String),
}

/// A streamed item this process was reading when its `get` timed out while the writer
/// still lived: the bytes read so far, kept for this process's next `get`.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    bytes: Vec<u8>,
    total: u64,
    stamp: Option<u64>,
}

/// The reading process: its stats slot and the item it parked, if any.
pub(crate) struct Reader<'r> {
    /// Its stats slot.
    pub slot: SlotIndex,
    /// The item it parked (see [`Partial`]). Locked only to park or resume one, never on
    /// the way of an ordinary item.
    pub parked: &'r Mutex<Option<Partial>>,
    /// Set by a read: the put stamp of the item read, if it carried one.
    pub stamp: Option<u64>,
}

/// The streamed item a read is inside of, if any.
#[derive(Debug, Default)]
struct Item {
    /// Between its FIRST and LAST record.
    open: bool,
    /// Its announced length.
    total: u64,
    /// Its put stamp, if it carries one.
    stamp: Option<u64>,
}

/// A record at the head of the ring.
struct Record {
    /// Where it starts.
    rp: u64,
    /// The published end of the ring (for skipping after corruption).
    wp: u64,
    /// Its data length.
    len: u32,
    /// Ring bytes it takes.
    size: u64,
    /// Bytes of put stamp at the start of its data (0 or [`STAMP_LEN`]).
    stamp_len: u32,
}

impl Reader<'_> {
    /// The parked item, locked.
    fn stash(&self) -> MutexGuard<'_, Option<Partial>> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }
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

/// Holds the read lock; unlocks on drop.
pub(crate) struct ReadGuard<'c>(#[allow(dead_code)] sys::MutexGuard<'c>);

impl<'a> Channel<'a> {
    /// Waits (without the read lock) until the ring has unread bytes, `deadline` passes or
    /// `stop()` says so (checked after every wake-up: see [`wake_readers`](Self::wake_readers)).
    pub(crate) fn wait_data(&self, deadline: Option<u64>, stop: impl Fn() -> bool) -> bool {
        if self.has_data() || spin_for(|| self.has_data()) {
            return true;
        }
        loop {
            self.data_event()
                .sleep(deadline, || self.has_data() || stop());
            if self.has_data() {
                return true;
            }
            if passed(deadline) || stop() {
                return false;
            }
        }
    }

    /// Wakes every reader waiting for data (in any process), so that one whose `stop`
    /// changed sees it; the others go back to sleep.
    pub(crate) fn wake_readers(&self) {
        self.data_event().wake();
    }

    /// Takes the read lock (repairing after a dead holder).
    pub(crate) fn lock_read(&self, deadline: Option<u64>) -> Result<ReadGuard<'a>, ReadStop> {
        loop {
            // In stretches when an `interruptible` check is in force.
            let until = interrupt::slice_end(deadline);
            match self.seg.data().read_lock.lock(until.unwrap_or(u64::MAX)) {
                Ok(state) => return Ok(self.enter_read(state)),
                Err(LockFailed::TimedOut) if passed(deadline) => return Err(ReadStop::Deadline),
                Err(LockFailed::TimedOut) if interrupt::check_now() => {
                    return Err(ReadStop::Interrupted);
                }
                Err(LockFailed::TimedOut) => {}
                Err(LockFailed::Broken(e)) => {
                    return Err(ReadStop::Broken(
                        BrokenKind::Lock,
                        format!("read lock: errno {e}"),
                    ));
                }
            }
        }
    }

    pub(super) fn enter_read(&self, state: Locked<'a>) -> ReadGuard<'a> {
        let d = self.seg.data();
        let (guard, died) = state.into_parts();
        if died {
            self.seg.stats().lock_recoveries.fetch_add(1, Relaxed);
            guard.mark_consistent();
        }
        if d.rj_active.load(Relaxed) != 0 {
            self.repair_read();
        }
        ReadGuard(guard)
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
        _g: &ReadGuard<'_>,
        out: &mut Vec<u8>,
        deadline: Option<u64>,
        me: &mut Reader<'_>,
    ) -> Result<bool, ReadStop> {
        let d = self.seg.data();
        me.stamp = None;
        d.rj_consumed
            .store(self.seg.stats().consumed.load(Relaxed), Relaxed);
        d.rj_final.store(0, Relaxed);
        d.rj_active.store(1, Relaxed);
        let mut item = Item::default();
        if d.parked_slot.load(Relaxed) != 0 {
            match self.unpark(me) {
                Unpark::Resumed(p) => {
                    *out = p.bytes;
                    item = Item {
                        open: true,
                        total: p.total,
                        stamp: p.stamp,
                    };
                }
                Unpark::Skipped => {}
                Unpark::Theirs => {
                    d.rj_active.store(0, Relaxed);
                    return Err(ReadStop::Parked);
                }
            }
        }
        loop {
            let Some((rp, wp)) = self.next_record(&mut item, out, deadline, me)? else {
                return Ok(false);
            };
            let (len, raw_kind) = self.read_header(rp);
            let size = record_size(len as u64);
            if size > wp - rp {
                return Err(self.corrupt(
                    wp,
                    CorruptKind::Overrun,
                    format!("record of {len} bytes overruns the data"),
                ));
            }
            // A put stamp may lead a WHOLE or FIRST record's data.
            let (kind, stamp_len) = if raw_kind & kind::STAMPED == 0 {
                (raw_kind, 0)
            } else {
                let kind = raw_kind & !kind::STAMPED;
                if !matches!(kind, kind::WHOLE | kind::FIRST) || len < STAMP_LEN as u32 {
                    return Err(self.corrupt(
                        wp,
                        CorruptKind::UnknownKind,
                        format!("record of kind {raw_kind:#x} with {len} bytes"),
                    ));
                }
                (kind, STAMP_LEN as u32)
            };
            let rec = Record {
                rp,
                wp,
                len,
                size,
                stamp_len,
            };
            let skipping = d.skip_item.load(Relaxed) != 0;
            let done = match kind {
                kind::WHOLE | kind::FIRST if item.open => Err(self.corrupt(
                    wp,
                    CorruptKind::Interleaved,
                    "new item inside an unfinished one".into(),
                )),
                kind::WHOLE | kind::FIRST if skipping => {
                    // A reader died after the skipped item ended but before clearing the
                    // flag: the flag is stale.
                    d.skip_item.store(0, Relaxed);
                    Ok(false)
                }
                kind::WHOLE => self.on_whole(&rec, out, me),
                kind::FIRST => self.on_first(&rec, out, &mut item),
                kind::MORE | kind::LAST if item.open => self.on_piece(&rec, kind, out, &item, me),
                kind::MORE | kind::LAST => Ok(self.on_orphan(&rec, kind)),
                kind::ABORT => Ok(self.on_abort(&rec, out, &mut item, skipping)),
                _ => Err(self.corrupt(
                    wp,
                    CorruptKind::UnknownKind,
                    format!("record of unknown kind {kind}"),
                )),
            };
            if done? {
                return Ok(true);
            }
        }
    }

    /// The position of the next published record and the write position, waiting inside
    /// an item for its next record. `None`: no item to start. Parks the item (and ends the
    /// read with `Deadline`) if the deadline passes while its live writer publishes nothing.
    fn next_record(
        &self,
        item: &mut Item,
        out: &mut Vec<u8>,
        deadline: Option<u64>,
        me: &mut Reader<'_>,
    ) -> Result<Option<(u64, u64)>, ReadStop> {
        let d = self.seg.data();
        loop {
            let rp = d.read_pos.load(Relaxed);
            let mut wp = d.reader_write_pos.load(Relaxed);
            if wp.wrapping_sub(rp) == 0 || wp.wrapping_sub(rp) > self.cap {
                wp = d.write_pos.load(SeqCst);
                d.reader_write_pos.store(wp, Relaxed);
            }
            let avail = wp.wrapping_sub(rp);
            if avail > self.cap || !rp.is_multiple_of(8) || (avail != 0 && avail < RECORD_HEADER) {
                return Err(self.corrupt(
                    wp,
                    CorruptKind::Positions,
                    format!("ring positions {rp}..{wp} are invalid"),
                ));
            }
            if avail != 0 {
                return Ok(Some((rp, wp)));
            }
            if !item.open && d.skip_item.load(Relaxed) == 0 {
                d.rj_active.store(0, Relaxed);
                return Ok(None);
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
            let stop = if self.has_data() {
                None
            } else if passed(deadline) {
                Some(ReadStop::Deadline)
            } else if interrupt::check_now() {
                Some(ReadStop::Interrupted)
            } else {
                None
            };
            if let Some(stop) = stop {
                if item.open {
                    // The writer lives (a dead one's lock would have been repaired with an
                    // ABORT by `probe_writer`): keep the item for later.
                    self.park(me, std::mem::take(out), item);
                }
                d.rj_active.store(0, Relaxed);
                return Err(stop);
            }
        }
    }

    /// The put stamp at the start of a record's data, if it has one.
    fn stamp_of(&self, rec: &Record) -> Option<u64> {
        (rec.stamp_len != 0).then(|| {
            let mut t = [0u8; STAMP_LEN];
            self.copy_out(rec.rp + RECORD_HEADER, &mut t);
            u64::from_le_bytes(t)
        })
    }

    /// A whole item in one record.
    fn on_whole(
        &self,
        rec: &Record,
        out: &mut Vec<u8>,
        me: &mut Reader<'_>,
    ) -> Result<bool, ReadStop> {
        let len = rec.len - rec.stamp_len;
        if len as u64 > self.max_item {
            return Err(self.corrupt(
                rec.wp,
                CorruptKind::Length,
                format!("item of {len} bytes over the limit"),
            ));
        }
        me.stamp = self.stamp_of(rec);
        let data_at = rec.rp + RECORD_HEADER + rec.stamp_len as u64;
        self.copy_out_to_vec(data_at, len as usize, out);
        self.finish_item(rec.rp + rec.size);
        Ok(true)
    }

    /// The first piece of a streamed item: its put stamp (if any), its total length, then
    /// data.
    fn on_first(&self, rec: &Record, out: &mut Vec<u8>, item: &mut Item) -> Result<bool, ReadStop> {
        let stamp = self.stamp_of(rec);
        let data_at = rec.rp + RECORD_HEADER + rec.stamp_len as u64;
        let rec_len = rec.len - rec.stamp_len;
        if rec_len < 8 {
            return Err(self.corrupt(
                rec.wp,
                CorruptKind::Length,
                "streamed item without a length".into(),
            ));
        }
        let mut t = [0u8; 8];
        self.copy_out(data_at, &mut t);
        let total = u64::from_le_bytes(t);
        if total > self.max_item || total < (rec_len - 8) as u64 {
            let why = format!("streamed item of {total} bytes is invalid");
            return Err(self.corrupt(rec.wp, CorruptKind::Length, why));
        }
        out.clear();
        // The length comes from shared memory: an allocation failure is an error for this
        // item, never an abort.
        if out.try_reserve_exact(total as usize).is_err() {
            let why = format!("no memory for an item of {total} bytes");
            return Err(self.corrupt(rec.wp, CorruptKind::NoMemory, why));
        }
        self.append(out, data_at + 8, rec_len as usize - 8);
        *item = Item {
            open: true,
            total,
            stamp,
        };
        self.seg.data().rj_in_item.store(1, Relaxed);
        self.publish_read(rec.rp + rec.size);
        Ok(false)
    }

    /// A middle or last piece of the item being read.
    fn on_piece(
        &self,
        rec: &Record,
        kind: u32,
        out: &mut Vec<u8>,
        item: &Item,
        me: &mut Reader<'_>,
    ) -> Result<bool, ReadStop> {
        if out.len() as u64 + rec.len as u64 > item.total {
            return Err(self.corrupt(
                rec.wp,
                CorruptKind::Length,
                "streamed item longer than announced".into(),
            ));
        }
        self.append(out, rec.rp + RECORD_HEADER, rec.len as usize);
        if kind != kind::LAST {
            self.publish_read(rec.rp + rec.size);
            return Ok(false);
        }
        if out.len() as u64 != item.total {
            return Err(self.corrupt(
                rec.wp,
                CorruptKind::Length,
                "streamed item shorter than announced".into(),
            ));
        }
        me.stamp = item.stamp;
        self.finish_item(rec.rp + rec.size);
        Ok(true)
    }

    /// A piece of an item whose reader died or parked and went (skip flag), or an orphan
    /// left when one died just as the flag changed: dropped.
    fn on_orphan(&self, rec: &Record, kind: u32) -> bool {
        let d = self.seg.data();
        let h = self.seg.stats();
        if kind == kind::LAST {
            // The skipped item was published in full: it leaves the queue now.
            d.skip_item.store(0, Relaxed);
            self.finish_item(rec.rp + rec.size);
            h.frames_discarded.fetch_add(1, Relaxed);
            // A fresh journal for the item read next (`finish_item` left its end behind).
            d.rj_consumed.store(h.consumed.load(Relaxed), Relaxed);
            d.rj_final.store(0, Relaxed);
            d.rj_active.store(1, Relaxed);
        } else {
            self.publish_read(rec.rp + rec.size);
        }
        false
    }

    /// The writer of the current item died: drop what was read of it.
    fn on_abort(&self, rec: &Record, out: &mut Vec<u8>, item: &mut Item, skipping: bool) -> bool {
        let d = self.seg.data();
        if item.open || skipping {
            self.seg.stats().frames_discarded.fetch_add(1, Relaxed);
        }
        *item = Item::default();
        out.clear();
        d.skip_item.store(0, Relaxed);
        d.rj_in_item.store(0, Relaxed);
        self.publish_read(rec.rp + rec.size);
        false
    }

    /// Keeps a streamed item whose reader's deadline passed for the reader's next `get`.
    /// The journal stays consistent at every step: a death before `parked_slot` is stored
    /// leaves `rj_in_item` set (the next reader skips the item), a death after it leaves a
    /// dead parker (likewise).
    fn park(&self, me: &mut Reader<'_>, bytes: Vec<u8>, item: &Item) {
        let d = self.seg.data();
        let slot = self.seg.slot(me.slot);
        *me.stash() = Some(Partial {
            bytes,
            total: item.total,
            stamp: item.stamp,
        });
        d.parked_pid.store(slot.pid.load(Relaxed), Relaxed);
        d.parked_start.store(slot.start_time.load(Relaxed), Relaxed);
        d.parked_slot.store(me.slot.get() as u64, Relaxed);
        d.rj_in_item.store(0, Relaxed);
    }

    /// A parked item is at the head of the ring: resume it if it is ours, skip it if its
    /// parker is gone, or leave it to its live parker.
    fn unpark(&self, me: &mut Reader<'_>) -> Unpark {
        let d = self.seg.data();
        let parker = self.seg.slot_index(d.parked_slot.load(Relaxed) as usize);
        let (pid, start) = (d.parked_pid.load(Relaxed), d.parked_start.load(Relaxed));
        let mine = parker == Some(me.slot) && {
            let s = self.seg.slot(me.slot);
            s.pid.load(Relaxed) == pid && s.start_time.load(Relaxed) == start
        };
        if mine && let Some(p) = me.stash().take() {
            // In the item again before the parker mark goes (see `park`).
            d.rj_in_item.store(1, Relaxed);
            d.parked_slot.store(0, Relaxed);
            return Unpark::Resumed(p);
        }
        let alive = !mine
            && parker.is_some_and(|parker| {
                let s = self.seg.slot(parker);
                s.pid.load(Relaxed) == pid
                    && s.start_time.load(Relaxed) == start
                    && sys::liveness(pid as u32, start, s.pid_ns.load(Relaxed))
                        != sys::Liveness::Dead
            });
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
    pub(crate) fn abandon_parked(&self, _g: &ReadGuard<'_>, me: &mut Reader<'_>) {
        let d = self.seg.data();
        if me.stash().take().is_some() && d.parked_slot.load(Relaxed) == me.slot.get() as u64 {
            d.skip_item.store(1, Relaxed);
            d.parked_slot.store(0, Relaxed);
        }
    }

    pub(super) fn append(&self, out: &mut Vec<u8>, pos: u64, len: usize) {
        let start = out.len();
        out.resize(start + len, 0);
        self.copy_out(pos, &mut out[start..]);
    }

    /// Consumes up to `end` and counts the item; journal first so a death here is repairable.
    pub(super) fn finish_item(&self, end: u64) {
        let d = self.seg.data();
        let h = self.seg.stats();
        d.rj_final.store(end, Relaxed);
        self.publish_read(end);
        h.consumed.store(d.rj_consumed.load(Relaxed) + 1, Release);
        d.rj_in_item.store(0, Relaxed);
        d.rj_active.store(0, Relaxed);
        if h.maxsize.load(Relaxed) != 0 {
            self.seg.capacity_event().wake();
        }
    }

    /// Skips every published byte after corrupt data and counts one discarded frame.
    pub(super) fn corrupt(&self, wp: u64, kind: CorruptKind, reason: String) -> ReadStop {
        let d = self.seg.data();
        self.publish_read(wp);
        d.skip_item.store(0, Relaxed);
        d.rj_in_item.store(0, Relaxed);
        d.rj_active.store(0, Relaxed);
        self.seg.stats().frames_discarded.fetch_add(1, Relaxed);
        ReadStop::Corrupt(kind, reason)
    }
}
