//! Repair after a lock holder that died: finishing or aborting the item in its journal,
//! and looking for a dead holder of the other side's lock while waiting.

use super::Channel;
use crate::layout::{RECORD_HEADER, kind, record_size};
use std::sync::atomic::Ordering::{Relaxed, Release};

impl<'a> Channel<'a> {
    /// The previous write-lock holder stopped inside an item (it died, or gave up mid-stream).
    pub(super) fn repair_write(&self) {
        let d = self.seg.data();
        let wp = d.write_pos.load(Relaxed);
        let fin = d.wj_final.load(Relaxed);
        if fin != 0 && wp >= fin {
            // Published in full: make sure its producer's `committed` counts its items (a
            // slot index that does not fit the segment is a scribbled journal: nothing to
            // count).
            if let Some(i) = self.seg.slot_index(d.wj_slot.load(Relaxed) as usize) {
                let before = d.wj_committed.load(Relaxed);
                let items = self.items_between(d.wj_start.load(Relaxed), fin);
                let _ = self.seg.slot(i).committed.compare_exchange(
                    before,
                    before + items,
                    Relaxed,
                    Relaxed,
                );
            }
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

    /// The items that end between ring positions `start` and `end` (published records one
    /// writer wrote under one journal: whole items, or one streamed item's pieces). No
    /// reader can have reused the bytes: only a writer does, and the next one repairs
    /// first. A scribbled record length stops the count where it is.
    fn items_between(&self, start: u64, end: u64) -> u64 {
        let (mut pos, mut items) = (start, 0);
        while pos < end && end - pos <= self.cap {
            let (len, k) = self.read_header(pos);
            if matches!(k & !kind::STAMPED, kind::WHOLE | kind::LAST) {
                items += 1;
            }
            pos += record_size(u64::from(len));
        }
        items
    }

    /// If the read lock's holder died, repair its journal now.
    pub(super) fn probe_reader(&self) {
        if let Ok(state) = self.seg.data().read_lock.try_lock() {
            drop(self.enter_read(state));
        }
    }

    /// The previous read-lock holder died inside an item.
    pub(super) fn repair_read(&self) {
        let d = self.seg.data();
        let h = self.seg.stats();
        let fin = d.rj_final.load(Relaxed);
        if fin != 0 && d.read_pos.load(Relaxed) >= fin {
            // It took the item (or a batch's run of items) out in full: count it as
            // consumed, up to one past the journal's count (the items went with it).
            let before = d.rj_consumed.load(Relaxed);
            h.consumed.fetch_max(before + 1, Release);
            self.seg.capacity_event().wake();
        } else if d.rj_in_item.load(Relaxed) != 0 {
            // It was between FIRST and LAST: skip the rest of that item.
            d.skip_item.store(1, Relaxed);
        }
        d.rj_in_item.store(0, Relaxed);
        d.rj_final.store(0, Relaxed);
        d.rj_active.store(0, Relaxed);
    }

    /// A reader waiting inside an item: if the write lock's holder died (or is gone with the
    /// item unfinished), end the item with an ABORT record.
    pub(super) fn probe_writer(&self) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{self, CREATOR_SLOT};

    /// A reader of a batch that dies after publishing it, before counting it, has every
    /// item counted by the next holder; one that dies before publishing took none.
    #[test]
    fn a_read_batch_cut_short_is_counted_exactly_once_published() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment::scratch(dir.path());
        let ch = Channel::new(&seg, 1 << 20);
        let (d, h) = (seg.data(), seg.stats());
        for published in [true, false] {
            let g = ch.try_lock_write().unwrap();
            let frames: [(&[u8], _); 3] = [(b"a", None), (b"bb", Some(7)), (b"ccc", None)];
            assert_eq!(ch.try_write_many(&g, frames, CREATOR_SLOT), 3);
            drop(g);
            let r = ch.lock_read(None).unwrap();
            let (before, start) = (h.consumed.load(Relaxed), d.read_pos.load(Relaxed));
            let mut seen = Vec::new();
            let n = ch.read_run(&r, &mut Vec::new(), &mut |item, stamp| {
                seen.push((item.to_vec(), stamp));
                true
            });
            assert_eq!(n, 3);
            assert_eq!(seen[1], (b"bb".to_vec(), Some(7)));
            assert_eq!(h.consumed.load(Relaxed), before + 3);
            // Undo what the reader did after the publication (and the publication too).
            h.consumed.store(before, Relaxed);
            d.rj_active.store(1, Relaxed);
            if !published {
                d.read_pos.store(start, Relaxed);
            }
            ch.repair_read();
            let counted = if published { 3 } else { 0 };
            assert_eq!(
                h.consumed.load(Relaxed),
                before + counted,
                "published {published}"
            );
            if !published {
                // Still there for the next reader.
                assert_eq!(ch.read_run(&r, &mut Vec::new(), &mut |_, _| true), 3);
            }
            drop(r);
        }
    }

    /// A writer of a batch that dies after publishing it, before counting it, has every
    /// item counted by the next holder; one that dies before publishing has none.
    #[test]
    fn a_batch_cut_short_is_counted_exactly_once_published() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment::scratch(dir.path());
        let ch = Channel::new(&seg, 1 << 20);
        let (d, s) = (seg.data(), seg.slot(CREATOR_SLOT));
        for published in [true, false] {
            let before = s.committed.load(Relaxed);
            let start = d.write_pos.load(Relaxed);
            let g = ch.try_lock_write().unwrap();
            let frames: [(&[u8], _); 3] = [(b"a", None), (b"bb", Some(7)), (&[0; 100], None)];
            assert_eq!(ch.try_write_many(&g, frames, CREATOR_SLOT), 3);
            assert_eq!(s.committed.load(Relaxed), before + 3);
            // Undo what the writer did after the publication (and the publication too).
            s.committed.store(before, Relaxed);
            d.wj_active.store(1, Relaxed);
            if !published {
                d.write_pos.store(start, Relaxed);
            }
            ch.repair_write();
            let counted = if published { 3 } else { 0 };
            assert_eq!(
                s.committed.load(Relaxed),
                before + counted,
                "published {published}"
            );
            assert_eq!(d.wj_active.load(Relaxed), 0);
            drop(g);
        }
    }
}
