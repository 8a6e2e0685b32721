//! Process slots: claiming one when a process attaches (or reserving one for a child about to
//! be forked), retiring it when the process detaches or is found dead, and folding its
//! counters into the retired totals (slot 0) so that totals never go backwards.
//!
//! All of this runs under the stats segment's robust `slot_lock`. Retirements bump
//! `retire_seq` around the fold (odd while folding) so observers can take a consistent
//! snapshot without the lock (a seqlock), and journal each counter they move
//! (`retire_slot`, `retire_word`, `retire_before`, `retire_value`), so that the next holder
//! of the lock finishes a retirement cut short by a crash exactly: nothing counted twice,
//! nothing lost. `lost` (the queue's) is only written under the lock, and is recomputed
//! from the slots' `dropped` counts whenever a holder died.

use crate::error::Error;
use crate::layout::{HIST_BUCKETS, Histogram, ProcSlot, slot_state};
use crate::segment::{FLAG_UNLINKED, Segments, SlotIndex};
use crate::sys::{self, LockFailed, Locked, MutexGuard};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

/// How long slot-lock waits last when the caller has no deadline of its own.
const DEFAULT_WAIT_NS: u64 = 10_000_000_000;

/// Holds the slot lock; unlocks on drop.
pub(crate) struct SlotLock<'a>(&'a Segments, MutexGuard<'a>);

impl<'a> SlotLock<'a> {
    /// Takes the slot lock, waiting at most until `deadline` (monotonic ns; `None`: 10 s).
    /// After a holder died, finishes whatever it left half done.
    pub(crate) fn take(seg: &'a Segments, deadline: Option<u64>) -> Result<Self, Error> {
        let h = seg.stats();
        let deadline = deadline.unwrap_or_else(|| sys::mono_now() + DEFAULT_WAIT_NS);
        match h.slot_lock.lock(deadline) {
            Ok(Locked::Clean(guard)) => Ok(SlotLock(seg, guard)),
            Ok(Locked::OwnerDied(guard)) => {
                let lock = SlotLock(seg, guard);
                h.lock_recoveries.fetch_add(1, Relaxed);
                lock.recover();
                lock.1.mark_consistent();
                Ok(lock)
            }
            Err(LockFailed::TimedOut) => Err(Error::Busy {
                name: seg.display_name.clone(),
            }),
            Err(LockFailed::Broken(e)) => Err(Error::io(
                "taking the slot lock",
                std::io::Error::from_raw_os_error(e),
            )),
        }
    }

    /// Repairs what a holder that died left: a retirement in progress is finished from its
    /// journal, and the derived counts (`attached`, `lost`) are recomputed from the slots.
    fn recover(&self) {
        let seg = self.0;
        let h = seg.stats();
        if let Some(i) = seg.slot_index(h.retire_slot.load(Relaxed) as usize) {
            let (total, part) = (seg.retired(), seg.slot(i));
            // `retire_word` is the word's index + 1 while its fold is in progress.
            let k = (h.retire_word.load(Relaxed) as usize).wrapping_sub(1);
            if let (Some(t), Some(p)) = (counter_words(total).get(k), counter_words(part).get(k)) {
                let (before, value) = (h.retire_before.load(Relaxed), h.retire_value.load(Relaxed));
                // The journal names a word whose fold may be half done: redo the add only if
                // the total does not have it yet, then clear the part.
                if t.load(Relaxed) != before.wrapping_add(value) {
                    t.store(before.wrapping_add(value), Relaxed);
                }
                p.store(0, Relaxed);
            }
            h.retire_word.store(0, Relaxed);
            self.retire(i);
        }
        h.retire_slot.store(0, Relaxed);
        // A retirement cut short leaves the sequence odd: make it even again.
        if !h.retire_seq.load(Relaxed).is_multiple_of(2) {
            h.retire_seq.fetch_add(1, Release);
        }
        let in_use = seg
            .slot_indices()
            .filter(|&i| seg.slot(i).state.load(Relaxed) != slot_state::FREE)
            .count();
        h.attached.store(in_use as u64, SeqCst);
        let dropped = seg
            .slot_indices()
            .map(|i| seg.slot(i).dropped.load(Relaxed))
            .fold(seg.retired().dropped.load(Relaxed), u64::wrapping_add);
        h.lost.store(dropped, SeqCst);
    }

    fn find_free(&self) -> Option<SlotIndex> {
        let seg = self.0;
        seg.slot_indices()
            .find(|&i| seg.slot(i).state.load(Relaxed) == slot_state::FREE)
    }

    /// Retires the slots of processes known to be dead (never ones whose liveness this
    /// process cannot tell). Returns how many were retired.
    fn reap(&self) -> usize {
        let seg = self.0;
        let mut n = 0;
        for i in seg.slot_indices() {
            let slot = seg.slot(i);
            if slot.state.load(Relaxed) == slot_state::FREE {
                continue;
            }
            let pid = slot.pid.load(Relaxed) as u32;
            let (start, ns) = (slot.start_time.load(Relaxed), slot.pid_ns.load(Relaxed));
            if sys::liveness(pid, start, ns) == sys::Liveness::Dead {
                self.retire(i);
                n += 1;
            }
        }
        n
    }

    /// Folds slot `i` into the retired totals and frees it; whatever it had accepted but
    /// not written (or dropped) is counted as lost so the capacity comes back. Every step
    /// can be repeated after a crash (see `recover`).
    fn retire(&self, i: SlotIndex) {
        self.retire_steps(i, &mut { usize::MAX });
    }

    /// `retire`, stopping after `steps` stores (the tests' crash at any instant).
    fn retire_steps(&self, i: SlotIndex, steps: &mut usize) {
        let seg = self.0;
        let h = seg.stats();
        let slot = seg.slot(i);
        if slot.state.load(Relaxed) == slot_state::FREE {
            return;
        }
        let mut go = || {
            *steps = steps.saturating_sub(1);
            *steps != 0
        };
        if h.retire_seq.load(Relaxed).is_multiple_of(2) {
            h.retire_seq.fetch_add(1, SeqCst); // odd: observers retry
        }
        h.retire_slot.store(i.get() as u64, Relaxed);
        // An item it published in full before dying, whose `committed` it did not count
        // yet, was written: count it as the next writer's repair would (the same CAS, so
        // only one of the two counts it), before anything undelivered is called lost.
        if let Some(done) = seg.data().published_write()
            && done.slot == i.get() as u64
        {
            done.count(&slot.committed);
        }
        // Accepted and neither written nor dropped: lost. Idempotent: once counted in
        // `dropped`, a repeat finds nothing undelivered.
        let undelivered = (slot.puts.load(Relaxed) + slot.reserving.load(Relaxed))
            .saturating_sub(slot.committed.load(Relaxed) + slot.dropped.load(Relaxed));
        if undelivered > 0 {
            slot.dropped
                .store(slot.dropped.load(Relaxed) + undelivered, Relaxed);
            if !go() {
                return;
            }
            h.lost.fetch_add(undelivered, SeqCst);
            wake_capacity(seg);
        }
        // `reserving` is folded into slot 0 with the counters below: there it counts the
        // capacity units returned this way, which `dropped` holds but are not items.
        // Got and never marked done: abandoned, so that `join` does not wait for them.
        // Idempotent: one store of the new total.
        let settled = slot
            .tasks_done
            .load(Relaxed)
            .saturating_add(slot.tasks_abandoned.load(Relaxed));
        let gets = slot.gets.load(Relaxed);
        if gets > settled {
            slot.tasks_abandoned
                .store(gets.saturating_sub(slot.tasks_done.load(Relaxed)), Relaxed);
        }
        let total = seg.retired();
        for (k, (t, p)) in counter_words(total)
            .into_iter()
            .zip(counter_words(slot))
            .enumerate()
        {
            let value = p.load(Relaxed);
            if value == 0 {
                continue;
            }
            let before = t.load(Relaxed);
            h.retire_before.store(before, Relaxed);
            h.retire_value.store(value, Relaxed);
            h.retire_word.store(k as u64 + 1, Relaxed);
            if !go() {
                return;
            }
            t.store(before.wrapping_add(value), Relaxed);
            if !go() {
                return;
            }
            p.store(0, Relaxed);
            h.retire_word.store(0, Relaxed);
        }
        // Times fold as the latest of the two: a repeat changes nothing.
        for (t, p) in time_words(total).into_iter().zip(time_words(slot)) {
            t.fetch_max(p.load(Relaxed), Relaxed);
            p.store(0, Relaxed);
        }
        slot.buffered_since_ns.store(0, Relaxed);
        slot.role.store(0, Relaxed);
        slot.pid.store(0, Relaxed);
        slot.pid_ns.store(0, Relaxed);
        slot.state.store(slot_state::FREE, Release);
        if !go() {
            return;
        }
        h.retire_slot.store(0, Relaxed);
        h.retire_seq.fetch_add(1, SeqCst); // even again
        let _ = h
            .attached
            .fetch_update(SeqCst, SeqCst, |a| Some(a.saturating_sub(1)));
    }
}

/// The counter words of a slot that retirement folds, in a fixed order (the journal's
/// `retire_word` indexes it).
fn counter_words(s: &ProcSlot) -> Vec<&AtomicU64> {
    let mut words = vec![
        &s.puts,
        &s.bytes_put,
        &s.committed,
        &s.committed_bytes,
        &s.dropped,
        &s.dropped_bytes,
        &s.full_events,
        &s.gets,
        &s.bytes_got,
        &s.empty_events,
        &s.put_timeouts,
        &s.get_timeouts,
        &s.decode_errors,
    ];
    for hist in [&s.put_blocked, &s.get_blocked, &s.wait] {
        words.extend(hist_words(hist));
    }
    words.extend([&s.tasks_done, &s.tasks_abandoned, &s.reserving]);
    words
}

/// The time words of a slot that retirement folds into slot 0 as the latest, so that slot 0
/// keeps when a process that has gone last put and got.
fn time_words(s: &ProcSlot) -> [&AtomicU64; 2] {
    [&s.last_put_ns, &s.last_get_ns]
}

fn hist_words(h: &Histogram) -> impl Iterator<Item = &AtomicU64> {
    [&h.count, &h.sum_ns]
        .into_iter()
        .chain(h.buckets.iter().take(HIST_BUCKETS))
}

fn identify(slot: &ProcSlot, pid: u32) {
    slot.pid.store(pid as u64, Relaxed);
    slot.pid_ns.store(sys::pid_namespace(), Relaxed);
    slot.start_time
        .store(sys::process_start_time(pid).unwrap_or(0), Relaxed);
    slot.attached_unix_ns.store(sys::realtime_now(), Relaxed);
    slot.heartbeat_ns.store(sys::coarse_now(), Relaxed);
}

/// Claims a slot for this process: the one reserved for it when it was forked, if any,
/// else a free one. `by_name` attaches through `open`, which must fail if the queue was
/// unlinked meanwhile (the caller then looks the name up again); a process that inherited
/// the queue (a forked child) may attach to an unlinked queue, whose memory it still maps.
pub(crate) fn attach(
    seg: &Segments,
    by_name: bool,
    reserved: Option<SlotIndex>,
    deadline: Option<u64>,
) -> Result<SlotIndex, Error> {
    let lock = SlotLock::take(seg, deadline)?;
    let h = seg.stats();
    if by_name && h.flags.load(Relaxed) & FLAG_UNLINKED != 0 {
        return Err(Error::Removed {
            name: seg.display_name.clone(),
        });
    }
    let me = sys::pid() as u64;
    let held = reserved.filter(|&i| {
        let s = seg.slot(i);
        s.state.load(Relaxed) == slot_state::RESERVED
            && matches!(s.pid.load(Relaxed), p if p == 0 || p == me)
    });
    let i = match held {
        Some(i) => i,
        None => {
            let i = match lock.find_free() {
                Some(i) => i,
                None => {
                    lock.reap();
                    lock.find_free().ok_or_else(|| Error::TooManyProcesses {
                        name: seg.display_name.clone(),
                    })?
                }
            };
            h.attached.fetch_add(1, SeqCst);
            i
        }
    };
    let slot = seg.slot(i);
    identify(slot, sys::pid());
    slot.state.store(slot_state::ACTIVE, Release);
    Ok(i)
}

/// Retires this process's slot `i`. If that leaves no process attached, the queue is
/// marked unlinked and `remove` (which deletes its files) runs while the lock is still
/// held, so a process opening the queue meanwhile either attaches first (and the files
/// stay) or finds it unlinked and looks the name up again.
pub(crate) fn detach(seg: &Segments, i: SlotIndex, remove: impl FnOnce()) {
    let Ok(lock) = SlotLock::take(seg, None) else {
        return; // a stopped holder: the slot is reaped once this process is gone
    };
    lock.reap();
    lock.retire(i);
    let h = seg.stats();
    if h.attached.load(SeqCst) == 0 {
        h.flags.fetch_or(FLAG_UNLINKED, SeqCst);
        remove();
    }
}

/// Retires the slots of processes that died. Returns how many were retired.
pub(crate) fn reap(seg: &Segments, deadline: Option<u64>) -> usize {
    SlotLock::take(seg, deadline).map_or(0, |lock| lock.reap())
}

/// Reserves a slot for a child about to be forked, so the queue (and its files) stays
/// while the child lives even if every other process detaches first. `None` if no slot is
/// free (the child then attaches on first use, if it can).
pub(crate) fn reserve_for_child(seg: &Segments) -> Option<SlotIndex> {
    let lock = SlotLock::take(seg, None).ok()?;
    let i = lock.find_free()?;
    let slot = seg.slot(i);
    slot.pid.store(0, Relaxed);
    slot.pid_ns.store(sys::pid_namespace(), Relaxed);
    slot.start_time.store(0, Relaxed);
    slot.attached_unix_ns.store(sys::realtime_now(), Relaxed);
    slot.state.store(slot_state::RESERVED, Release);
    seg.stats().attached.fetch_add(1, SeqCst);
    Some(i)
}

/// Names the process a reserved slot is for (called by the parent and by the child after
/// `fork`, whichever comes first), so that its death frees the slot.
pub(crate) fn assign_child(seg: &Segments, i: SlotIndex, pid: u32) {
    let slot = seg.slot(i);
    if slot.state.load(Relaxed) == slot_state::RESERVED
        && slot
            .pid
            .compare_exchange(0, u64::from(pid), SeqCst, Relaxed)
            .is_ok()
    {
        slot.start_time
            .store(sys::process_start_time(pid).unwrap_or(0), Relaxed);
    }
}

/// Gives back a slot reserved for a child that was never made (`fork` failed).
pub(crate) fn unreserve(seg: &Segments, i: SlotIndex) {
    if let Ok(lock) = SlotLock::take(seg, None)
        && seg.slot(i).state.load(Relaxed) == slot_state::RESERVED
    {
        lock.retire(i);
    }
}

/// Counts `n` items (`bytes` bytes) this process accepted and will never write as dropped
/// (its slot) and lost (the queue), under the lock like every other writer of `lost`.
pub(crate) fn count_dropped(seg: &Segments, i: SlotIndex, n: u64, bytes: u64) {
    let slot = seg.slot(i);
    let h = seg.stats();
    match SlotLock::take(seg, None) {
        Ok(_lock) => {
            slot.dropped.store(slot.dropped.load(Relaxed) + n, Relaxed);
            h.lost.fetch_add(n, SeqCst);
        }
        // A stopped holder: count anyway (the next recovery recomputes `lost`).
        Err(_) => {
            slot.dropped.fetch_add(n, Relaxed);
            h.lost.fetch_add(n, SeqCst);
        }
    }
    slot.dropped_bytes.fetch_add(bytes, Relaxed);
    wake_capacity(seg);
}

/// Wakes `put`s waiting for capacity (after capacity was given back).
pub(crate) fn wake_capacity(seg: &Segments) {
    seg.capacity_event().wake();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment;

    /// A retirement cut short after any number of steps (the process dies holding the
    /// slot lock) is finished exactly by the next holder: totals count every item once,
    /// `attached` and `lost` are right.
    #[test]
    fn a_retirement_cut_short_anywhere_is_finished_exactly() {
        let dir = tempfile::tempdir().unwrap();
        for stop_after in 1..40 {
            let seg = segment::scratch(dir.path());
            let i = attach(&seg, false, Some(segment::CREATOR_SLOT), None).unwrap();
            let s = seg.slot(i);
            s.puts.store(10, Relaxed);
            s.committed.store(7, Relaxed);
            s.gets.store(5, Relaxed);
            s.put_blocked.count.store(3, Relaxed);
            s.put_blocked.buckets[2].store(3, Relaxed);
            // Pretend the owner died: a thread takes the lock and stops after `stop_after`
            // steps of the retirement, then exits holding it (a dead owner to the kernel).
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    let lock = SlotLock::take(&seg, None).unwrap();
                    lock.retire_steps(i, &mut { stop_after });
                    std::mem::forget(lock);
                });
            });
            let lock = SlotLock::take(&seg, None).unwrap();
            drop(lock);
            let (t, h) = (seg.retired(), seg.stats());
            assert_eq!(
                seg.slot(i).state.load(Relaxed),
                slot_state::FREE,
                "{stop_after}"
            );
            assert_eq!(t.puts.load(Relaxed), 10, "{stop_after}");
            assert_eq!(t.committed.load(Relaxed), 7, "{stop_after}");
            assert_eq!(t.gets.load(Relaxed), 5, "{stop_after}");
            assert_eq!(t.dropped.load(Relaxed), 3, "{stop_after}");
            assert_eq!(h.lost.load(Relaxed), 3, "{stop_after}");
            assert_eq!(t.put_blocked.buckets[2].load(Relaxed), 3, "{stop_after}");
            assert_eq!(h.attached.load(Relaxed), 0, "{stop_after}");
            assert!(h.retire_seq.load(Relaxed).is_multiple_of(2));
        }
    }

    /// A writer killed after publishing a batch, before counting it, loses none of it when
    /// its slot is retired: every item is counted as written, none as lost.
    #[test]
    fn a_batch_published_by_a_writer_killed_before_counting_it_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment::scratch(dir.path());
        let i = attach(&seg, false, Some(segment::CREATOR_SLOT), None).unwrap();
        let ch = crate::channel::Channel::new(&seg, 1 << 20);
        let s = seg.slot(i);
        s.puts.store(3, Relaxed);
        let g = ch.try_lock_write().unwrap();
        let frames: [(&[u8], _); 3] = [(b"a", None), (b"bb", None), (b"ccc", None)];
        assert_eq!(ch.try_write_many(&g, frames, i), 3);
        drop(g);
        // Undo what the writer did after the publication: it died there.
        s.committed.store(0, Relaxed);
        seg.data().wj_active.store(1, Relaxed);
        SlotLock::take(&seg, None).unwrap().retire(i);
        assert_eq!(seg.retired().committed.load(Relaxed), 3);
        assert_eq!(seg.stats().lost.load(Relaxed), 0);
    }
}
