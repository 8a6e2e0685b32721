//! Waiting without locks: the futex event that every sleeper in a segment uses, the brief
//! spin (then yield) that comes before sleeping, and consistent reads of counters that a
//! retirement may be moving (a seqlock over `retire_seq`, bounded by time).
//!
//! The robust process-shared lock itself is [`crate::sys::RobustMutex`] (glibc's, with a
//! guard that alone can unlock it or mark it consistent).

use crate::sys;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64, fence};

/// Pauses between the two checks of `spin_briefly`.
const PAUSES: u32 = 1;
/// Yields of the CPU (each ~0.5 µs here, one check each) before a waiter sleeps on a futex.
const YIELDS: u32 = 128;

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

/// How long a reader retries while retirements keep moving counters between slots. A real
/// retirement takes microseconds; a sequence that is still odd or still changing after this
/// long belongs to a process that died or stopped in the middle of one, or to a hostile
/// writer. The reader then takes its last read as it is: the counts of the slot being
/// retired may be missing from it or counted twice.
pub(crate) const RETRY_NS: u64 = 5_000_000;

/// Runs `read` until it saw no retirement in progress, for at most [`RETRY_NS`]; after that
/// the last result is returned as it is.
pub(crate) fn read_consistent<R>(seq: &AtomicU64, read: impl Fn() -> R) -> R {
    let deadline = sys::mono_now() + RETRY_NS;
    loop {
        let before = seq.load(Acquire);
        if !before.is_multiple_of(2) {
            if sys::mono_now() >= deadline {
                return read();
            }
            std::thread::yield_now();
            continue;
        }
        let r = read();
        fence(Acquire);
        if seq.load(Relaxed) == before || sys::mono_now() >= deadline {
            return r;
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

    #[test]
    fn a_sequence_that_never_settles_still_gives_a_read() {
        // Odd for ever (a retirer that died midway): the read happens once the time is up.
        let stuck = AtomicU64::new(1);
        let start = sys::mono_now();
        assert_eq!(read_consistent(&stuck, || 7), 7);
        assert!(sys::mono_now() >= start + RETRY_NS);
        // Changing on every read (a hostile writer): the last read is returned.
        let moving = AtomicU64::new(0);
        let n = std::cell::Cell::new(0u64);
        let r = read_consistent(&moving, || {
            moving.fetch_add(2, Relaxed);
            n.set(n.get() + 1);
            n.get()
        });
        assert_eq!(r, n.get());
        assert!(r >= 2);
    }
}
