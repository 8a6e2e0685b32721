//! Process slots: claiming one when a process attaches, retiring it when the process detaches
//! or is found dead, and folding its counters into the retired totals (slot 0) so that totals
//! never go backwards.
//!
//! All of this runs under the stats segment's robust `slot_lock`, and retirements bump
//! `retire_seq` around the fold (odd while folding) so observers can take a consistent
//! snapshot without the lock (a seqlock).

use crate::error::Error;
use crate::layout::{HIST_BUCKETS, Histogram, ProcSlot, slot_state};
use crate::segment::{FLAG_UNLINKED, Segments};
use crate::sys::{self, LockFailed, Locked};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

/// Holds the slot lock; unlocks on drop.
pub(crate) struct SlotLock<'a>(&'a Segments);

impl<'a> SlotLock<'a> {
    pub(crate) fn take(seg: &'a Segments) -> Result<Self, Error> {
        let h = seg.stats();
        match h.slot_lock.lock(Some(sys::mono_now() + 10_000_000_000)) {
            Ok(Locked::Clean) => {}
            Ok(Locked::OwnerDied) => {
                h.lock_recoveries.fetch_add(1, Relaxed);
                // A retirement may have been cut short: make the sequence even again. Its
                // slot is still ACTIVE (state is cleared last), so it will be retired again.
                if !h.retire_seq.load(Relaxed).is_multiple_of(2) {
                    h.retire_seq.fetch_add(1, Release);
                }
                h.slot_lock.mark_consistent();
            }
            Err(LockFailed::TimedOut) => {
                return Err(Error::io(
                    "taking the slot lock",
                    std::io::Error::from(std::io::ErrorKind::TimedOut),
                ));
            }
            Err(LockFailed::Broken(e)) => {
                return Err(Error::io(
                    "taking the slot lock",
                    std::io::Error::from_raw_os_error(e),
                ));
            }
        }
        Ok(SlotLock(seg))
    }
}

impl Drop for SlotLock<'_> {
    fn drop(&mut self) {
        self.0.stats().slot_lock.unlock();
    }
}

fn identify(slot: &ProcSlot, pid: u32) {
    slot.pid.store(pid as u64, Relaxed);
    slot.pid_ns.store(sys::pid_namespace(), Relaxed);
    slot.start_time
        .store(sys::process_start_time(pid).unwrap_or(0), Relaxed);
    slot.attached_unix_ns.store(sys::realtime_now(), Relaxed);
    slot.heartbeat_ns.store(sys::coarse_now(), Relaxed);
}

fn find_free(seg: &Segments) -> Option<usize> {
    (1..=seg.slot_count()).find(|&i| seg.slot(i).state.load(Relaxed) == slot_state::FREE)
}

/// Claims a slot for this process. `by_name` attaches through `open`, which must fail if
/// the queue was unlinked meanwhile; a process that inherited the queue (a forked child)
/// may attach to an unlinked queue, whose memory it still maps.
pub(crate) fn attach(seg: &Segments, by_name: bool) -> Result<usize, Error> {
    let _lock = SlotLock::take(seg)?;
    let h = seg.stats();
    if by_name && h.flags.load(Relaxed) & FLAG_UNLINKED != 0 {
        return Err(Error::Removed {
            name: seg.display_name.clone(),
        });
    }
    let i = match find_free(seg) {
        Some(i) => i,
        None => {
            reap_locked(seg);
            find_free(seg).ok_or_else(|| Error::TooManyProcesses {
                name: seg.display_name.clone(),
            })?
        }
    };
    let slot = seg.slot(i);
    identify(slot, sys::pid());
    slot.state.store(slot_state::ACTIVE, Release);
    h.attached.fetch_add(1, SeqCst);
    Ok(i)
}

/// Retires this process's slot. Returns true if no process is attached any more (the caller
/// then removes the queue's files).
pub(crate) fn detach(seg: &Segments, i: usize) -> bool {
    let Ok(_lock) = SlotLock::take(seg) else {
        return false;
    };
    reap_locked(seg);
    retire_locked(seg, i)
}

/// Retires the slots of processes that died. Returns how many were retired.
pub(crate) fn reap(seg: &Segments) -> usize {
    match SlotLock::take(seg) {
        Ok(_lock) => reap_locked(seg),
        Err(_) => 0,
    }
}

/// Caller holds the slot lock.
fn reap_locked(seg: &Segments) -> usize {
    let mut n = 0;
    for i in 1..=seg.slot_count() {
        let slot = seg.slot(i);
        if slot.state.load(Relaxed) == slot_state::FREE {
            continue;
        }
        let pid = slot.pid.load(Relaxed) as u32;
        let (start, ns) = (slot.start_time.load(Relaxed), slot.pid_ns.load(Relaxed));
        if sys::liveness(pid, start, ns) == sys::Liveness::Dead {
            retire_locked(seg, i);
            n += 1;
        }
    }
    n
}

fn fold(total: &AtomicU64, part: &AtomicU64) {
    let v = part.swap(0, Relaxed);
    if v != 0 {
        total.fetch_add(v, Relaxed);
    }
}

fn fold_hist(total: &Histogram, part: &Histogram) {
    fold(&total.count, &part.count);
    fold(&total.sum_ns, &part.sum_ns);
    for b in 0..HIST_BUCKETS {
        fold(&total.buckets[b], &part.buckets[b]);
    }
}

/// Folds slot `i` into the retired totals and frees it; whatever it had accepted but not
/// written (or dropped) is counted as lost so the capacity comes back.
/// Caller holds the slot lock.
fn retire_locked(seg: &Segments, i: usize) -> bool {
    let h = seg.stats();
    let slot = seg.slot(i);
    if i == 0 || slot.state.load(Relaxed) == slot_state::FREE {
        return h.attached.load(SeqCst) == 0;
    }
    h.retire_seq.fetch_add(1, SeqCst); // odd: observers retry
    let undelivered = slot
        .puts
        .load(Relaxed)
        .saturating_sub(slot.committed.load(Relaxed))
        .saturating_sub(slot.dropped.load(Relaxed))
        + slot.reserving.swap(0, Relaxed);
    if undelivered > 0 {
        slot.dropped.fetch_add(undelivered, Relaxed);
        h.lost.fetch_add(undelivered, SeqCst);
        wake_capacity(seg);
    }
    let total = seg.slot(0);
    for (t, p) in [
        (&total.puts, &slot.puts),
        (&total.bytes_put, &slot.bytes_put),
        (&total.committed, &slot.committed),
        (&total.committed_bytes, &slot.committed_bytes),
        (&total.dropped, &slot.dropped),
        (&total.dropped_bytes, &slot.dropped_bytes),
        (&total.full_events, &slot.full_events),
        (&total.gets, &slot.gets),
        (&total.bytes_got, &slot.bytes_got),
        (&total.empty_events, &slot.empty_events),
        (&total.put_timeouts, &slot.put_timeouts),
        (&total.get_timeouts, &slot.get_timeouts),
        (&total.decode_errors, &slot.decode_errors),
    ] {
        fold(t, p);
    }
    fold_hist(&total.put_blocked, &slot.put_blocked);
    fold_hist(&total.get_blocked, &slot.get_blocked);
    slot.role.store(0, Relaxed);
    slot.pid.store(0, Relaxed);
    slot.pid_ns.store(0, Relaxed);
    slot.state.store(slot_state::FREE, Release);
    h.retire_seq.fetch_add(1, SeqCst); // even again
    let left = h.attached.fetch_sub(1, SeqCst).saturating_sub(1);
    left == 0 && h.pending_children.load(SeqCst) == 0
}

/// A forked child gives back its claim on the queue (it attached, or exits without having
/// used it). Returns true if that leaves nobody, so the caller removes the files.
pub(crate) fn release_pending(seg: &Segments) -> bool {
    let h = seg.stats();
    let Ok(_lock) = SlotLock::take(seg) else {
        return false;
    };
    let before = h.pending_children.load(SeqCst);
    if before == 0 {
        return false;
    }
    h.pending_children.store(before - 1, SeqCst);
    before == 1 && h.attached.load(SeqCst) == 0
}

/// Wakes `put`s waiting for capacity (after capacity was given back).
pub(crate) fn wake_capacity(seg: &Segments) {
    crate::channel::Event {
        seq: &seg.stats().cap_seq,
    }
    .wake();
}
