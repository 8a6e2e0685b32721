//! Per-process bookkeeping that must survive `fork`: the fork generation (so a forked child
//! knows that the per-process state it inherited belongs to its parent) and the list of this
//! process's live queues (so the fork helper can attach and flush them in the child).
//!
//! The list is guarded by a spin lock that `pthread_atfork` takes before `fork` and releases
//! in both processes afterwards, so a child never inherits it locked or half-updated.

use std::cell::UnsafeCell;
use std::sync::Once;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Weak};

static FORK_GEN: AtomicU64 = AtomicU64::new(1);
static HOOKS: Once = Once::new();

struct Registry {
    locked: AtomicBool,
    cores: UnsafeCell<Vec<Weak<crate::queue::Core>>>,
}

// SAFETY: `cores` is only touched while `locked` is held (see `with`).
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    locked: AtomicBool::new(false),
    cores: UnsafeCell::new(Vec::new()),
};

fn lock() {
    while REGISTRY
        .locked
        .compare_exchange_weak(false, true, Acquire, Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn unlock() {
    REGISTRY.locked.store(false, Release);
}

fn with<R>(f: impl FnOnce(&mut Vec<Weak<crate::queue::Core>>) -> R) -> R {
    lock();
    // SAFETY: the spin lock gives this thread exclusive access until `unlock`.
    let r = f(unsafe { &mut *REGISTRY.cores.get() });
    unlock();
    r
}

unsafe extern "C" fn before_fork() {
    lock();
}

unsafe extern "C" fn after_fork_parent() {
    unlock();
}

unsafe extern "C" fn after_fork_child() {
    FORK_GEN.fetch_add(1, Relaxed);
    unlock();
}

fn install_hooks() {
    // The handlers only touch atomics (async-signal-safe, as a fork handler must be).
    HOOKS.call_once(|| crate::sys::at_fork(before_fork, after_fork_parent, after_fork_child));
}

/// The current fork generation: it changes in a child after every `fork`.
pub(crate) fn generation() -> u64 {
    FORK_GEN.load(Relaxed)
}

/// Records a queue of this process.
pub(crate) fn register(core: &Arc<crate::queue::Core>) {
    install_hooks();
    with(|v| {
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(core));
    });
}

/// This process's live queues.
pub(crate) fn live() -> Vec<Arc<crate::queue::Core>> {
    with(|v| v.iter().filter_map(Weak::upgrade).collect())
}
