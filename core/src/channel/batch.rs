//! Batches: the whole items of a `put_many` written under one journal and published at
//! once, and the whole items behind a `get_many`'s first taken as a run and published at
//! once. One release of the ring position and one wake-up per batch, instead of per item,
//! is what makes a batch cheaper than its items one by one across two CPUs.

use super::Channel;
use super::read::ReadGuard;
use super::write::WriteGuard;
use crate::layout::{RECORD_HEADER, STAMP_LEN, kind, record_size};
use crate::segment::SlotIndex;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

impl Channel<'_> {
    /// Writes the leading `frames` (each with its put stamp, if any) that fit the ring now,
    /// as whole items, and publishes them at once: one release of `write_pos` and one
    /// wake-up for the lot. Caller holds the lock. How many it wrote (0 while an earlier
    /// item still awaits its ABORT). A writer that dies before the publication leaves
    /// none of them readable; after it, all of them (`repair_write` counts them).
    pub(crate) fn try_write_many<'f>(
        &self,
        _g: &WriteGuard<'_>,
        frames: impl IntoIterator<Item = (&'f [u8], Option<u64>)>,
        slot: SlotIndex,
    ) -> usize {
        let d = self.seg.data();
        if d.wj_active.load(Relaxed) != 0 {
            return 0;
        }
        let start = d.write_pos.load(Relaxed);
        let committed = self.seg.slot(slot).committed.load(Relaxed);
        let (mut end, mut items, mut bytes) = (start, 0, 0);
        for (frame, stamp) in frames {
            let stamp_len = if stamp.is_some() { STAMP_LEN } else { 0 };
            let need = record_size((stamp_len + frame.len()) as u64);
            let want = end - start + need;
            if need > self.cap || !matches!(self.free_at_least(want), Ok(f) if f >= want) {
                break;
            }
            if items == 0 {
                self.begin_journal(start, slot, committed);
            }
            match stamp {
                None => self.write_record(end, kind::WHOLE, &[], frame),
                Some(t) => {
                    self.write_record(end, kind::WHOLE | kind::STAMPED, &t.to_le_bytes(), frame);
                }
            }
            end += need;
            items += 1;
            bytes += frame.len();
        }
        if items > 0 {
            self.mark_final(end, items as u64);
            self.publish_write(end);
            self.end_journal(slot, committed, items as u64, bytes);
        }
        items
    }

    /// After a batch's first item (taken by `read`): takes the whole items
    /// published behind it, handing each (its bytes and put stamp) to `take` until it says
    /// that was the last, and publishes them at once: one release of `read_pos`, one store
    /// of `consumed`. A reader that dies before the publication took none of them (they
    /// stay for the next reader); after it, all of them (`repair_read` counts them). How
    /// many it took. Caller holds the read lock.
    pub(crate) fn read_run(
        &self,
        _g: &ReadGuard<'_>,
        buf: &mut Vec<u8>,
        take: &mut dyn FnMut(&[u8], Option<u64>) -> bool,
    ) -> u64 {
        let d = self.seg.data();
        if d.parked_slot.load(Relaxed) != 0 || d.skip_item.load(Relaxed) != 0 {
            return 0;
        }
        let start = d.read_pos.load(Relaxed);
        let wp = d.write_pos.load(SeqCst);
        if wp.wrapping_sub(start) > self.cap || !start.is_multiple_of(8) {
            return 0;
        }
        let (mut rp, mut items) = (start, 0);
        while wp - rp >= RECORD_HEADER {
            let (len, raw_kind) = self.read_header(rp);
            let size = record_size(u64::from(len));
            let stamp_len = if raw_kind & kind::STAMPED == 0 {
                0
            } else {
                STAMP_LEN as u32
            };
            // Anything but a whole, sound item ends the run: `read` deals with it.
            if raw_kind & !kind::STAMPED != kind::WHOLE
                || size > wp - rp
                || len < stamp_len
                || u64::from(len - stamp_len) > self.max_item
            {
                break;
            }
            let stamp = (stamp_len != 0).then(|| {
                let mut t = [0u8; STAMP_LEN];
                self.copy_out(rp + RECORD_HEADER, &mut t);
                u64::from_le_bytes(t)
            });
            let data_at = rp + RECORD_HEADER + u64::from(stamp_len);
            self.copy_out_to_vec(data_at, (len - stamp_len) as usize, buf);
            rp += size;
            items += 1;
            if !take(buf, stamp) {
                break;
            }
        }
        if items > 0 {
            let h = self.seg.stats();
            let consumed = h.consumed.load(Relaxed) + items;
            // The journal of one item whose count is the run's last.
            d.rj_consumed.store(consumed - 1, Relaxed);
            d.rj_final.store(rp, Relaxed);
            d.rj_active.store(1, Relaxed);
            self.publish_read(rp);
            h.consumed.store(consumed, Release);
            d.rj_active.store(0, Relaxed);
            if h.maxsize.load(Relaxed) != 0 {
                self.seg.capacity_event().wake();
            }
        }
        items
    }
}
