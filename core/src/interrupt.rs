//! Cutting a blocked call short from the calling thread: [`interruptible`] asks a
//! question at intervals while a queue call waits, and the call gives up when the answer
//! is yes. This is how an interpreter that handles signals between calls (Python's
//! Ctrl-C) keeps a blocked `get` responsive while the queue sees one call, counted once
//! (one empty event, one blocked-time observation, and a timeout only if its own deadline
//! passes), instead of a timed call per interval.

use crate::sys;
use std::cell::Cell;
use std::time::Duration;

/// The shortest interval between checks (a shorter one is this).
const MIN_EVERY_NS: u64 = 1_000_000;

/// The check in force on this thread.
#[derive(Clone, Copy)]
struct Hook {
    /// The closure, type-erased: valid while the [`interruptible`] call that installed it
    /// runs.
    check: *const (dyn Fn() -> bool + 'static),
    /// Its interval, ns.
    every: u64,
    /// Not to be asked again before this (monotonic ns).
    next: u64,
}

thread_local! {
    static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
}

/// Runs `f`, and while a queue call made by `f` on this thread waits (for an item, for
/// room, or for another process's item to be finished), calls `check` every `every`
/// (not more often); when `check` returns true the call gives up with
/// [`GetError::Interrupted`](crate::GetError::Interrupted) or
/// [`PutError::Interrupted`](crate::PutError::Interrupted) (the item back, nothing
/// enqueued). A call that does not wait never calls `check`. Nested calls use the
/// innermost check; while `check` runs, none is in force (a queue call it makes waits
/// without one). An interval under 1 ms is 1 ms.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
/// use std::time::Duration;
/// let q = mpqueue::Queue::<u8>::new(0)?;
/// let stop = AtomicBool::new(true); // say, set by a signal handler
/// let r = mpqueue::interruptible(Duration::from_millis(10), &|| stop.load(Relaxed), || q.get());
/// assert_eq!(r, Err(mpqueue::GetError::Interrupted));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn interruptible<R>(every: Duration, check: &dyn Fn() -> bool, f: impl FnOnce() -> R) -> R {
    /// Puts the previous hook back, also when `f` unwinds.
    struct Restore(Option<Hook>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HOOK.with(|h| h.set(self.0));
        }
    }
    let every_ns = u64::try_from(every.as_nanos())
        .unwrap_or(u64::MAX)
        .max(MIN_EVERY_NS);
    // SAFETY: only the lifetime is erased. The pointer is read only by `check_now`, on this
    // thread, while `f` runs; `Restore` removes it before this function returns or unwinds,
    // so it never outlives `check`.
    let erased: *const (dyn Fn() -> bool + 'static) =
        unsafe { std::mem::transmute::<*const (dyn Fn() -> bool + '_), _>(check) };
    let hook = Hook {
        check: erased,
        every: every_ns,
        next: sys::mono_now().saturating_add(every_ns),
    };
    let _restore = Restore(HOOK.with(|h| h.replace(Some(hook))));
    f()
}

/// The deadline for the next stretch of a wait that ends at `deadline`: sooner, by the
/// check's interval, when a check is in force.
pub(crate) fn slice_end(deadline: Option<u64>) -> Option<u64> {
    match HOOK.with(Cell::get) {
        None => deadline,
        Some(hook) => {
            let next = sys::mono_now().saturating_add(hook.every);
            Some(deadline.map_or(next, |d| d.min(next)))
        }
    }
}

/// Whether the check in force (if any, and if its interval has passed since it was last
/// asked) says to give up now.
pub(crate) fn check_now() -> bool {
    let Some(mut hook) = HOOK.with(Cell::get) else {
        return false;
    };
    let now = sys::mono_now();
    if now < hook.next {
        return false;
    }
    hook.next = now.saturating_add(hook.every);
    // Out of force while it runs, and back after (also if it unwinds).
    struct Reinstall(Hook);
    impl Drop for Reinstall {
        fn drop(&mut self) {
            HOOK.with(|h| h.set(Some(self.0)));
        }
    }
    HOOK.with(|h| h.set(None));
    let _back = Reinstall(hook);
    // SAFETY: installed by `interruptible`, which is still running on this thread (it
    // removes the hook before it returns), so the closure is alive.
    unsafe { (*hook.check)() }
}
