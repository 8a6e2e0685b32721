//! One queue's state in one process: the shared segments, this process's slot, buffer and
//! feeder (replaced in a forked child), and the put and get paths down to the channel.

use crate::capacity::Capacity;
use crate::channel::{Channel, ReadStop, Reader};
use crate::error::{BrokenKind, Error, GetError, JoinError, PutError};
use crate::interrupt;
use crate::layout::ProcSlot;
use crate::procs;
use crate::registry;
use crate::segment::{Segments, SlotIndex};
use crate::stats::{Blocked, Counters};
use crate::sync;
use crate::sys;
use std::sync::Arc;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};
use std::time::Duration;

pub(super) use super::local::{Frame, Local, LocalState};

/// Default time the exit flush waits for a reader to make room before dropping what is left.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// A `get` that finds another process's parked item at the head of the ring looks again
/// this often.
const PARKED_POLL: Duration = Duration::from_millis(5);

/// `get_nowait` still waits this long for another reader to finish copying an item out.
const LOCK_GRACE_NS: u64 = 50_000_000;

/// Where a batch `get` hands each item's bytes; false: no more.
pub(super) type Sink<'s> = dyn FnMut(&[u8]) -> bool + 's;

/// How one `get` waited, for its counters.
#[derive(Default)]
struct GetWait {
    /// It found the queue empty.
    found_empty: bool,
    /// When a real wait began (monotonic ns).
    since: Option<u64>,
    /// Its deadline passed while waiting for data.
    timed_out: bool,
}

/// Why [`Core::reserve`] took no capacity.
pub(super) enum NoRoom {
    /// The queue was still full at the deadline.
    Full,
    /// The [`interruptible`](crate::interruptible) check said to stop.
    Interrupted,
}

impl NoRoom {
    /// The error of a put of `item` that found no room.
    pub(super) fn with<T>(self, item: T) -> PutError<T> {
        match self {
            NoRoom::Full => PutError::Full(item),
            NoRoom::Interrupted => PutError::Interrupted(item),
        }
    }
}

/// Per-process settings of a queue handle.
#[derive(Debug, Clone)]
pub(super) struct Opts {
    pub(super) maxsize: u64,
    pub(super) max_item: u64,
    pub(super) stats: bool,
    pub(super) flush_timeout: Option<Duration>,
}

/// State shared by all clones of a queue in one process (and by its feeder thread).
pub(crate) struct Core {
    pub(crate) seg: Segments,
    pub(super) opts: Opts,
    pub(super) local: AtomicPtr<Local>,
    /// The generation (process) that created or opened this handle.
    pub(super) origin: u64,
    /// A slot reserved for this process when `process::fork` made it: (the generation of
    /// the process it is for, the slot index + 1), packed as `generation << 16 | slot`;
    /// taken over on attach, given back at exit.
    pub(super) claim: AtomicU64,
}

impl Core {
    /// A handle on `seg` for this process, attached at once: to the slot reserved for it
    /// when `reserved` (the creator's), else to a free one.
    pub(super) fn new(
        seg: Segments,
        opts: Opts,
        reserved: Option<SlotIndex>,
    ) -> Result<Arc<Self>, Error> {
        let core = Arc::new(Core {
            seg,
            opts,
            local: AtomicPtr::new(std::ptr::null_mut()),
            origin: registry::generation(),
            claim: AtomicU64::new(0),
        });
        if let Some(slot) = reserved {
            core.restore_claim(slot);
        }
        core.local(None)?;
        registry::register(&core);
        Ok(core)
    }

    /// This process's `Local`, attaching the process on first use (and in forked children),
    /// waiting for the slot lock at most until `deadline` (`None`: 10 s).
    #[inline]
    pub(super) fn local(&self, deadline: Option<u64>) -> Result<&Local, Error> {
        match self.current_local() {
            Some(l) => Ok(l),
            None => self.attach_local(deadline),
        }
    }

    /// `local`'s way when this process has no `Local` of its generation yet.
    #[cold]
    fn attach_local(&self, deadline: Option<u64>) -> Result<&Local, Error> {
        let generation = registry::generation();
        let p = self.local.load(Acquire);
        // SAFETY: a non-null pointer was produced by Box::into_raw below and is freed only in
        // Core::drop; a Local of another generation is leaked, never freed, so the reference
        // is valid for as long as `self`.
        if let Some(l) = unsafe { p.as_ref() }
            && l.generation == generation
        {
            return Ok(l);
        }
        // Only the process that opened the handle attaches "by name"; forked children
        // inherited it and keep working even if the name is gone.
        let reserved = self.take_claim();
        let slot = match procs::attach(&self.seg, generation == self.origin, reserved, deadline) {
            Ok(slot) => slot,
            Err(e) => {
                if let Some(i) = reserved {
                    self.restore_claim(i); // still ours, for the next try or for exit
                }
                return Err(e);
            }
        };
        self.seg.prefault();
        let fresh = Box::into_raw(Box::new(Local::new(generation, slot)));
        match self.local.compare_exchange(p, fresh, AcqRel, Acquire) {
            // SAFETY: `fresh` was just leaked from a Box and is now owned by `self.local`.
            Ok(_) => Ok(unsafe { &*fresh }),
            Err(_) => {
                // Another thread attached first: give our slot back and use theirs.
                // SAFETY: `fresh` was never shared; we still own it.
                drop(unsafe { Box::from_raw(fresh) });
                procs::detach(&self.seg, slot, || self.remove_files());
                self.local(deadline)
            }
        }
    }

    /// The current `Local` if this process has one (no attach).
    #[inline]
    pub(super) fn current_local(&self) -> Option<&Local> {
        // SAFETY: see `local`.
        unsafe { self.local.load(Acquire).as_ref() }
            .filter(|l| l.generation == registry::generation())
    }

    pub(super) fn my_slot(&self, l: &Local) -> &ProcSlot {
        self.seg.slot(l.slot)
    }

    /// This process's counters of the queue.
    pub(super) fn counters<'s>(&'s self, l: &'s Local) -> Counters<'s> {
        Counters::new(&self.seg, l.slot, &l.next_point, self.opts.stats)
    }

    pub(super) fn capacity(&self) -> Capacity<'_> {
        Capacity::new(&self.seg, self.opts.maxsize)
    }

    /// Items committed-and-unread plus items buffered in any process.
    pub(super) fn size(&self) -> u64 {
        self.capacity().size()
    }

    /// Takes `n` capacity units of a bounded queue, counting what happened.
    pub(super) fn reserve(
        &self,
        local: &Local,
        n: u64,
        deadline: Option<u64>,
    ) -> Result<(), NoRoom> {
        let r = self.capacity().take(self.my_slot(local), n, deadline);
        let counters = self.counters(local);
        if r.found_full {
            counters.found(Blocked::Put);
        }
        if let Some(since) = r.waited_since {
            if r.timed_out {
                counters.timed_out(Blocked::Put);
            }
            counters.waited(Blocked::Put, since);
        }
        match r {
            _ if r.taken => Ok(()),
            _ if r.interrupted => Err(NoRoom::Interrupted),
            _ => Err(NoRoom::Full),
        }
    }

    /// This process's `Local` for a put of `item`, with the errors a put gives (the item
    /// back in each): the deadline passed while attaching is `Full`, as for a full queue.
    #[inline(always)]
    pub(super) fn put_local<T>(
        &self,
        item: T,
        deadline: Option<u64>,
    ) -> Result<(&Local, T), PutError<T>> {
        let local = match self.local(deadline) {
            Ok(l) => l,
            Err(Error::Busy { .. }) if deadline.is_some() => return Err(PutError::Full(item)),
            Err(e) => {
                return Err(PutError::Broken {
                    item,
                    kind: BrokenKind::Attach,
                    detail: e.to_string(),
                });
            }
        };
        if local.closed.load(Relaxed) {
            return Err(PutError::Closed(item));
        }
        Ok((local, item))
    }

    pub(super) fn put_frame<T>(
        self: &Arc<Self>,
        item: T,
        frame: &[u8],
        deadline: Option<u64>,
    ) -> Result<(), PutError<T>> {
        // The same checks as `put_local`, written out: on the hot path, moving the item
        // through `put_local`'s return costs ~28 instructions per put (callgrind).
        let local = match self.local(deadline) {
            Ok(l) => l,
            Err(Error::Busy { .. }) if deadline.is_some() => return Err(PutError::Full(item)),
            Err(e) => {
                return Err(PutError::Broken {
                    item,
                    kind: BrokenKind::Attach,
                    detail: e.to_string(),
                });
            }
        };
        if local.closed.load(Relaxed) {
            return Err(PutError::Closed(item));
        }
        let bounded = self.opts.maxsize > 0;
        if bounded && let Err(why) = self.reserve(local, 1, deadline) {
            return Err(why.with(item));
        }
        // From here the item is accepted.
        let put = self.counters(local).accepted(frame.len(), bounded);
        drop(item);
        self.enqueue(local, frame, put);
        Ok(())
    }

    /// Takes the next item's bytes into `buf`. With `more` (a batch), hands each item to it
    /// and goes on reading under the same hold of the read lock while items are there and
    /// `more` asks for them; every item, the first included, goes to `more`.
    pub(super) fn get_frame(
        &self,
        deadline: Option<u64>,
        nowait: bool,
        buf: &mut Vec<u8>,
        mut more: Option<&mut Sink<'_>>,
    ) -> Result<(), GetError> {
        let local = self.local(deadline).map_err(|e| match e {
            Error::Busy { .. } if deadline.is_some() => GetError::Empty,
            e => GetError::Broken {
                kind: BrokenKind::Attach,
                detail: e.to_string(),
            },
        })?;
        if local.closed.load(Relaxed) {
            return Err(GetError::Closed);
        }
        if let Some(e) = local.take_deferred() {
            return Err(e);
        }
        let counters = self.counters(local);
        counters.getting();
        let ch = Channel::new(&self.seg, self.opts.max_item);
        let mut wait = GetWait::default();
        let outcome = loop {
            if let Err(e) = self.await_item(&ch, local, deadline, nowait, &mut wait) {
                break Err(e);
            }
            match self.take_item(&ch, local, buf, deadline, &counters, more.as_deref_mut()) {
                Ok(true) => break Ok(()),
                Ok(false) => {
                    if local.closed.load(SeqCst) {
                        break Err(GetError::Closed);
                    }
                    if nowait || deadline.is_some_and(|d| sys::mono_now() >= d) {
                        break Err(GetError::Empty);
                    }
                }
                Err(ReadStop::Parked) => {
                    // Another live process's item is at the head: wait for it to come back
                    // (or for this process to close the queue).
                    if local.closed.load(SeqCst) {
                        break Err(GetError::Closed);
                    }
                    wait.found_empty = true;
                    let now = sys::mono_now();
                    if nowait || deadline.is_some_and(|d| now >= d) {
                        break Err(GetError::Empty);
                    }
                    wait.since.get_or_insert(now);
                    std::thread::sleep(deadline.map_or(PARKED_POLL, |d| {
                        PARKED_POLL.min(Duration::from_nanos(d - now))
                    }));
                    if interrupt::check_now() {
                        break Err(GetError::Interrupted);
                    }
                }
                Err(ReadStop::Deadline) => break Err(GetError::Empty),
                Err(ReadStop::Interrupted) => break Err(GetError::Interrupted),
                Err(ReadStop::Corrupt(kind, detail)) => {
                    break Err(GetError::Corrupt { kind, detail });
                }
                Err(ReadStop::Broken(kind, detail)) => {
                    break Err(GetError::Broken { kind, detail });
                }
            }
        };
        if wait.timed_out {
            counters.timed_out(Blocked::Get);
        }
        if wait.found_empty {
            counters.found(Blocked::Get);
        }
        if let Some(since) = wait.since {
            counters.waited(Blocked::Get, since);
        }
        outcome
    }

    /// Waits (without the read lock) until the ring has data, unless an item of ours is
    /// parked: then its writer may be gone with nothing more to publish, and the read
    /// repairs that. `Err(Empty)` at the deadline, or at once for `nowait`.
    fn await_item(
        &self,
        ch: &Channel<'_>,
        local: &Local,
        deadline: Option<u64>,
        nowait: bool,
        wait: &mut GetWait,
    ) -> Result<(), GetError> {
        if ch.has_data() || local.parked().is_some() {
            return Ok(());
        }
        wait.found_empty = true;
        if nowait {
            return Err(GetError::Empty);
        }
        // Time only waits longer than a brief spin (no clock read on the fast path).
        if !sync::spin_briefly(|| ch.has_data()) {
            wait.since.get_or_insert_with(sys::mono_now);
            // SeqCst, as `close` stores it: the Event protocol (a store, then a load of the
            // futex word, against a waiter-bit RMW, then a load of this) misses no wake-up.
            let closed = || local.closed.load(SeqCst);
            // In stretches when an `interruptible` check is in force, asking it between.
            loop {
                if ch.wait_data(interrupt::slice_end(deadline), closed) {
                    break;
                }
                if closed() {
                    return Err(GetError::Closed);
                }
                if deadline.is_some_and(|d| sys::mono_now() >= d) {
                    wait.timed_out = true;
                    return Err(GetError::Empty);
                }
                if interrupt::check_now() {
                    return Err(GetError::Interrupted);
                }
            }
        }
        Ok(())
    }

    /// Takes the read lock and reads one item (see `Channel::read`), counting it: the count
    /// under the lock (its holder alone writes `gets`), the times after it.
    fn take_item(
        &self,
        ch: &Channel<'_>,
        local: &Local,
        buf: &mut Vec<u8>,
        deadline: Option<u64>,
        counters: &Counters<'_>,
        more: Option<&mut Sink<'_>>,
    ) -> Result<bool, ReadStop> {
        // `get_nowait` still waits a little for another reader to finish copying an item.
        let lock_deadline = deadline.map(|d| d.max(sys::mono_now() + LOCK_GRACE_NS));
        let guard = ch.lock_read(lock_deadline)?;
        let mut me = Reader {
            slot: local.slot,
            parked: &local.parked,
            stamp: None,
        };
        if !ch.read(&guard, buf, deadline, &mut me)? {
            return Ok(false);
        }
        counters.got(buf.len());
        let Some(more) = more else {
            drop(guard);
            counters.got_at(me.stamp);
            return Ok(true);
        };
        // A batch: the next items only while whole ones are in the ring now (it never
        // starts a streamed item, which could make it wait, or park it). A read that fails
        // after the first item ends the batch; what it skipped is counted as for any `get`.
        let mut stamps = vec![me.stamp];
        if more(buf) {
            // The whole items behind it, published at once, then counted.
            let mut bytes = 0;
            let items = ch.read_run(&guard, buf, &mut |item, stamp| {
                bytes += item.len();
                stamps.push(stamp);
                more(item)
            });
            counters.got_many(items, bytes);
        }
        drop(guard);
        counters.got_many_at(&stamps);
        Ok(true)
    }

    /// Closes the queue in this process: no more puts or gets; the feeder flushes and exits;
    /// a `get` blocked in another thread returns `Closed`.
    pub(super) fn close(&self) {
        if let Some(local) = self.current_local() {
            local.closed.store(true, SeqCst);
            local.stopping.store(true, Relaxed);
            local.lock().stop = true;
            local.work.notify_all();
        } else if let Ok(local) = self.local(None) {
            local.closed.store(true, SeqCst);
        }
        Channel::new(&self.seg, self.opts.max_item).wake_readers();
    }

    /// Waits until the feeder has written everything and exited (after `close`).
    pub(super) fn join_feeder(&self, local: &Local) -> Result<(), JoinError> {
        if !local.closed.load(Relaxed) {
            return Err(JoinError::NotClosed);
        }
        if local.cancel_join.load(Relaxed) {
            local.abort.store(true, Relaxed);
        }
        local.stopping.store(true, Relaxed);
        let handle = {
            let mut st = local.lock();
            st.stop = true;
            local.work.notify_all();
            st.feeder.take()
        };
        if let Some(h) = handle {
            let _ = h.join();
        }
        let mut st = local.lock();
        // Whatever is still buffered (the feeder never started, or was cancelled) is dropped.
        let rest = st.buffer.take(usize::MAX);
        st.dropped += self.count_dropped(local, &rest);
        self.counters(local).buffered_since(0);
        // What was dropped is counted in the stats (`dropped` of this process, `lost` of
        // the queue); after `cancel_join_thread` dropping is what the caller asked for.
        match std::mem::take(&mut st.dropped) {
            0 => Ok(()),
            _ if local.cancel_join.load(Relaxed) => Ok(()),
            dropped => Err(JoinError::Stalled { dropped }),
        }
    }

    /// A process that detaches with an item parked gives it up: the next reader skips the
    /// rest of it (counted in `frames_discarded`). Waits for the read lock as long as exit
    /// flushing may wait.
    pub(super) fn abandon_parked(&self, local: &Local) {
        if local.parked().is_none() {
            return;
        }
        let ch = Channel::new(&self.seg, self.opts.max_item);
        let wait = self.opts.flush_timeout.unwrap_or(DEFAULT_FLUSH_TIMEOUT);
        let deadline = sys::mono_now().saturating_add(wait.as_nanos().min(u64::MAX as u128) as u64);
        if let Ok(guard) = ch.lock_read(Some(deadline)) {
            let mut me = Reader {
                slot: local.slot,
                parked: &local.parked,
                stamp: None,
            };
            ch.abandon_parked(&guard, &mut me);
        }
    }

    /// Ends this process's use of the queue: flush (unless cancelled), stop the feeder,
    /// retire the stats slot, and remove the files if this was the last process.
    pub(crate) fn shutdown_process(&self) {
        if let Some(i) = self.take_claim() {
            // Forked, and never used the queue: give back the slot reserved for it.
            procs::detach(&self.seg, i, || self.remove_files());
        }
        let Some(local) = self.current_local() else {
            return;
        };
        if local.detached.swap(true, SeqCst) {
            return;
        }
        local.closed.store(true, Relaxed);
        let _ = self.join_feeder(local);
        self.abandon_parked(local);
        procs::detach(&self.seg, local.slot, || self.remove_files());
    }

    /// Removes the queue's files (the last process detached; the slot lock is held).
    pub(super) fn remove_files(&self) {
        for path in &self.seg.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl registry::Member for Core {
    fn reserve_for_child(&self) -> Option<SlotIndex> {
        procs::reserve_for_child(&self.seg)
    }

    fn assign_child(&self, slot: SlotIndex, child: u32) {
        procs::assign_child(&self.seg, slot, child);
    }

    fn unreserve(&self, slot: SlotIndex) {
        procs::unreserve(&self.seg, slot);
    }

    fn hold_claim(&self, slot: SlotIndex) {
        procs::assign_child(&self.seg, slot, sys::pid());
        self.restore_claim(slot);
    }

    fn shutdown_process(&self) {
        Core::shutdown_process(self);
    }

    fn segments(&self) -> &Segments {
        &self.seg
    }
}

impl Core {
    fn restore_claim(&self, slot: SlotIndex) {
        self.claim
            .store(registry::generation() << 16 | slot.get() as u64, SeqCst);
    }

    /// Takes this process's reserved slot, if it holds one.
    pub(super) fn take_claim(&self) -> Option<SlotIndex> {
        let c = self.claim.load(SeqCst);
        (c != 0
            && c >> 16 == registry::generation()
            && self.claim.compare_exchange(c, 0, SeqCst, Relaxed).is_ok())
        .then(|| self.seg.slot_index((c & 0xffff) as usize))
        .flatten()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let p = self.local.load(Acquire);
        // SAFETY: see `Core::local`; only a Local of this process's generation is freed, and
        // no feeder uses it any more (the feeder holds an Arc<Core>, so it has exited).
        if let Some(l) = unsafe { p.as_ref() }
            && l.generation == registry::generation()
        {
            // SAFETY: `p` came from Box::into_raw and is freed exactly once, here.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}
