//! Repair after a lock holder that died: finishing or aborting the item in its journal,
//! and looking for a dead holder of the other side's lock while waiting.

use super::Channel;
use crate::layout::{RECORD_HEADER, kind};
use std::sync::atomic::Ordering::{Relaxed, Release};

impl<'a> Channel<'a> {
    /// The previous write-lock holder stopped inside an item (it died, or gave up mid-stream).
    pub(super) fn repair_write(&self) {
        let d = self.seg.data();
        let wp = d.write_pos.load(Relaxed);
        if let Some(done) = d.published_write() {
            // Published in full: make sure its producer's `committed` counts its items (a
            // slot index that does not fit the segment is a scribbled journal: nothing to
            // count).
            if let Some(i) = self.seg.slot_index(done.slot as usize) {
                done.count(&self.seg.slot(i).committed);
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
            // A scribbled count more than a ring's worth of items ahead is not believed.
            let after = d.rj_consumed.load(Relaxed).saturating_add(1);
            if after.saturating_sub(h.consumed.load(Relaxed)) <= self.cap / RECORD_HEADER {
                h.consumed.fetch_max(after, Release);
            }
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
    use crate::layout::record_size;
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

    /// A streamed item (its records span more than the ring) whose writer dies after
    /// publishing its last record, before counting it, is counted once by the next holder.
    #[test]
    fn a_streamed_item_cut_short_after_its_publication_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment::scratch(dir.path());
        let ch = Channel::new(&seg, 1 << 20);
        let (d, s) = (seg.data(), seg.slot(CREATOR_SLOT));
        let before = s.committed.load(Relaxed);
        let g = ch.try_lock_write().unwrap();
        // The writer's steps by hand, a reader taking each piece as it comes.
        let mut wp = d.write_pos.load(Relaxed);
        ch.begin_journal(wp, CREATOR_SLOT, before);
        let piece = [7u8; 3000];
        let size = record_size(piece.len() as u64);
        for k in [kind::FIRST, kind::MORE, kind::LAST] {
            if k == kind::LAST {
                ch.mark_final(wp + size, 1);
            }
            ch.write_record(wp, k, &[], &piece);
            ch.publish_write(wp + size);
            wp += size;
            d.read_pos.store(wp, Relaxed);
        }
        assert!(wp - d.wj_start.load(Relaxed) > ch.cap);
        // It dies here: the next holder repairs.
        ch.repair_write();
        assert_eq!(s.committed.load(Relaxed), before + 1);
        assert_eq!(d.wj_active.load(Relaxed), 0);
        drop(g);
    }

    /// A read journal whose count is scribbled far ahead of `consumed` is not believed.
    #[test]
    fn a_scribbled_read_journal_does_not_move_consumed() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment::scratch(dir.path());
        let ch = Channel::new(&seg, 1 << 20);
        let (d, h) = (seg.data(), seg.stats());
        let r = ch.lock_read(None).unwrap();
        let before = h.consumed.load(Relaxed);
        for scribble in [u64::MAX, before + 1_000_000] {
            d.rj_consumed.store(scribble, Relaxed);
            d.rj_final.store(d.read_pos.load(Relaxed).max(8), Relaxed);
            d.read_pos.store(d.rj_final.load(Relaxed), Relaxed);
            d.rj_active.store(1, Relaxed);
            ch.repair_read();
            assert_eq!(h.consumed.load(Relaxed), before, "{scribble}");
            assert_eq!(d.rj_active.load(Relaxed), 0);
        }
        drop(r);
    }
}
