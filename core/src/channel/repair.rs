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
        let fin = d.wj_final.load(Relaxed);
        if fin != 0 && wp >= fin {
            // Published in full: make sure its producer's `committed` counts it (a slot
            // index that does not fit the segment is a scribbled journal: nothing to count).
            if let Some(i) = self.seg.slot_index(d.wj_slot.load(Relaxed) as usize) {
                let before = d.wj_committed.load(Relaxed);
                let _ = self.seg.slot(i).committed.compare_exchange(
                    before,
                    before + 1,
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
            // It took the item out in full: count it as consumed (the item went with it).
            let before = d.rj_consumed.load(Relaxed);
            let _ = h
                .consumed
                .compare_exchange(before, before + 1, Release, Relaxed);
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
