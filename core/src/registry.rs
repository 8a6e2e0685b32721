//! Per-process bookkeeping that must survive `fork`: the fork generation (so a forked child
//! knows that the per-process state it inherited belongs to its parent) and the list of this
//! process's live queues (so the fork helper can reserve slots for a child and flush them
//! in it, and the metrics reporter can find them).
//!
//! The list is guarded by a spin lock that `pthread_atfork` takes before `fork` and releases
//! in both processes afterwards, so a child never inherits it locked or half-updated. Queues
//! are held as [`Member`] trait objects, so this module knows nothing of the queue itself.

use crate::segment::{Segments, SlotIndex};
use std::cell::UnsafeCell;
use std::sync::Once;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Weak};

static FORK_GEN: AtomicU64 = AtomicU64::new(1);
static HOOKS: Once = Once::new();

/// What the fork helper and the metrics reporter need of a queue of this process.
pub(crate) trait Member: Send + Sync {
    /// Before `fork`, in the parent: reserves a stats slot for the child.
    fn reserve_for_child(&self) -> Option<SlotIndex>;
    /// After `fork`, in the parent: the reserved slot is the child's.
    fn assign_child(&self, slot: SlotIndex, child: u32);
    /// After a failed `fork`: gives the reserved slot back.
    fn unreserve(&self, slot: SlotIndex);
    /// In the child after `fork`: it holds the reserved slot.
    fn hold_claim(&self, slot: SlotIndex);
    /// Flushes (unless cancelled) and detaches this process.
    fn shutdown_process(&self);
    /// The queue's segments (read by the `metrics` reporter).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn segments(&self) -> &Segments;
}

struct Registry {
    locked: AtomicBool,
    members: UnsafeCell<Vec<Weak<dyn Member>>>,
}

// SAFETY: `members` is only touched while `locked` is held (see `with`).
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    locked: AtomicBool::new(false),
    members: UnsafeCell::new(Vec::new()),
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

/// Holds the spin lock; releases it on drop, so a panic inside `with` cannot leave it held
/// (which would deadlock the next `fork`).
struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        unlock();
    }
}

fn with<R>(f: impl FnOnce(&mut Vec<Weak<dyn Member>>) -> R) -> R {
    lock();
    let _held = Held;
    // SAFETY: the spin lock gives this thread exclusive access until `_held` drops.
    f(unsafe { &mut *REGISTRY.members.get() })
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
pub(crate) fn register(member: &Arc<impl Member + 'static>) {
    install_hooks();
    let member: Arc<dyn Member> = member.clone();
    with(|v| {
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(&member));
    });
}

/// This process's live queues.
pub(crate) fn live() -> Vec<Arc<dyn Member>> {
    with(|v| v.iter().filter_map(Weak::upgrade).collect())
}
