//! `Queue<T>`: Python's `multiprocessing.Queue` over the shared channel, with a per-process
//! buffer and feeder thread, capacity accounting for `maxsize`, and live counters.

use crate::capacity::Capacity;
use crate::channel::{self, Channel, Partial, ReadStop, Reader, WriteLimits};
use crate::codec::{self, EncodeError};
use crate::error::{Error, GetError, JoinError, PutError};
use crate::layout::{self, Histogram, ProcSlot, role};
use crate::procs;
use crate::registry;
use crate::segment::{self, CreateParams, Segments};
use crate::sync;
use crate::sys;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Default ring size of the shared channel.
pub const DEFAULT_CAPACITY_BYTES: usize = 1 << 20;
/// Default largest item (encoded bytes).
pub const DEFAULT_MAX_ITEM: usize = 64 << 20;
/// Default number of processes that can be attached at once.
pub const DEFAULT_MAX_PROCESSES: usize = 64;
/// Default time the exit flush waits for a reader to make room before dropping what is left.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `max_item_size` accepted from a builder or a segment.
const MAX_ITEM_LIMIT: usize = 1 << 40;
/// Times `open` (and `open_or_create`) looks a name up again when the queue went away
/// under it.
const RETRIES: u32 = 100;
/// Environment variable: `off` (or `0`) turns the per-operation counters off by default.
pub const STATS_ENV: &str = "MPQUEUE_STATS";

/// A `get` that finds another process's parked item at the head of the ring looks again
/// this often.
const PARKED_POLL: Duration = Duration::from_millis(5);
/// `get_nowait` still waits this long for another reader to finish copying an item out.
const LOCK_GRACE_NS: u64 = 50_000_000;
/// Items the feeder writes per hold of the write lock.
const FEEDER_BATCH: usize = 256;
/// Attempts `put` makes at writing into the ring itself before it hands the item to the
/// feeder.
const DIRECT_TRIES: u32 = 4;
/// Spins between two attempts when another process holds the write lock.
const DIRECT_LOCK_SPINS: u32 = 32;
/// Longest `put` waits for the reader to make room before it hands the item to the feeder.
const DIRECT_WAIT_NS: u64 = 500_000;
/// A `put` waiting for the feeder (see `Core::await_drain`) checks for progress this often…
const DRAIN_SLICE: Duration = Duration::from_millis(1);
/// …and gives up after this long without any.
const DRAIN_STALL_NS: u64 = 20_000_000;
/// A `put` waiting for room stops waiting once no reader has moved for this long.
const READER_STALL_NS: u64 = 50_000;
/// Buffered items at which `put` waits for the feeder (see `Core::await_drain`).
const BUFFER_HIGH_ITEMS: usize = 4 * FEEDER_BATCH;

/// Per-process settings of a queue handle.
#[derive(Debug, Clone)]
struct Opts {
    maxsize: u64,
    max_item: u64,
    stats: bool,
    flush_timeout: Option<Duration>,
}

/// State shared by all clones of a queue in one process (and by its feeder thread).
pub(crate) struct Core {
    pub(crate) seg: Segments,
    opts: Opts,
    local: AtomicPtr<Local>,
    /// The generation (process) that created or opened this handle.
    origin: u64,
    /// A slot reserved for this process when `process::fork` made it: (the generation of
    /// the process it is for, the slot index + 1), packed as `generation << 16 | slot`;
    /// taken over on attach, given back at exit.
    claim: AtomicU64,
}

/// This process's side of a queue: its buffer, feeder and stats slot. Replaced (never freed)
/// in a forked child, where the parent's copy may be locked by a thread that does not exist.
struct Local {
    generation: u64,
    slot: usize,
    state: Mutex<LocalState>,
    /// Feeder: items or stop arrived.
    work: Condvar,
    /// Flushers: the feeder went idle or exited.
    idle: Condvar,
    closed: AtomicBool,
    /// Set by close/exit: the feeder exits once the buffer is empty, and stalls count.
    stopping: AtomicBool,
    cancel_join: AtomicBool,
    /// Set at exit after cancel_join_thread: the feeder drops everything at once.
    abort: AtomicBool,
    detached: AtomicBool,
    /// A streamed item this process's `get` timed out in (see `Channel::read`).
    parked: Mutex<Option<Partial>>,
}

/// Encoded frames waiting for the feeder, oldest first, with their total size.
#[derive(Default)]
struct Pending {
    frames: VecDeque<Vec<u8>>,
    bytes: u64,
}

impl Pending {
    fn push(&mut self, frame: &[u8]) {
        self.frames.push_back(frame.to_vec());
        self.bytes += frame.len() as u64;
    }

    /// Removes and returns the oldest `n` frames (all of them if there are fewer).
    fn take(&mut self, n: usize) -> Vec<Vec<u8>> {
        let taken: Vec<Vec<u8>> = self.frames.drain(..n.min(self.frames.len())).collect();
        self.bytes -= taken.iter().map(|f| f.len() as u64).sum::<u64>();
        taken
    }

    fn len(&self) -> usize {
        self.frames.len()
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[derive(Default)]
struct LocalState {
    buffer: Pending,
    /// The feeder holds a batch taken from `buffer`.
    busy: bool,
    /// Batches the feeder has finished with (written or dropped).
    fed: u64,
    /// `fed` when a `put` last waited a whole slice for the feeder in vain.
    stalled_at: Option<u64>,
    feeder: Option<JoinHandle<()>>,
    feeder_started: bool,
    /// The feeder should exit once the buffer is empty.
    stop: bool,
    /// The feeder sleeps on `work` (so a put must notify it).
    feeder_idle: bool,
    /// Items the feeder dropped (stall, abort or broken segment).
    dropped: u64,
}

impl Local {
    fn lock(&self) -> MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The parked item. Only taken while holding the channel's read lock (or briefly to
    /// look), so it is never contended for long.
    fn parked(&self) -> MutexGuard<'_, Option<Partial>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Core {
    fn new(seg: Segments, opts: Opts) -> Result<Arc<Self>, Error> {
        let core = Arc::new(Core {
            seg,
            opts,
            local: AtomicPtr::new(std::ptr::null_mut()),
            origin: registry::generation(),
            claim: AtomicU64::new(0),
        });
        core.local(None)?;
        registry::register(&core);
        Ok(core)
    }

    /// This process's `Local`, attaching the process on first use (and in forked children),
    /// waiting for the slot lock at most until `deadline` (`None`: 10 s).
    fn local(&self, deadline: Option<u64>) -> Result<&Local, Error> {
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
        let fresh = Box::into_raw(Box::new(Local {
            generation,
            slot,
            state: Mutex::new(LocalState::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
            closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            cancel_join: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            parked: Mutex::new(None),
        }));
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
    fn current_local(&self) -> Option<&Local> {
        // SAFETY: see `local`.
        unsafe { self.local.load(Acquire).as_ref() }
            .filter(|l| l.generation == registry::generation())
    }

    fn my_slot(&self, l: &Local) -> &ProcSlot {
        self.seg.slot(l.slot)
    }

    /// Marks this process's role and, on every 32nd operation (and on the first), its
    /// heartbeat: a clock read per operation would cost more than all the counters.
    /// Operations that block also refresh it (`observe_wait`).
    fn touch(&self, slot: &ProcSlot, role_bit: u64, ops: u64) {
        if self.opts.stats {
            if slot.role.load(Relaxed) & role_bit == 0 {
                slot.role.fetch_or(role_bit, Relaxed);
                slot.heartbeat_ns.store(sys::coarse_now(), Relaxed);
            } else if ops.is_multiple_of(32) {
                slot.heartbeat_ns.store(sys::coarse_now(), Relaxed);
            }
        }
    }

    fn observe_wait(&self, slot: &ProcSlot, h: &Histogram, start: u64) {
        if self.opts.stats {
            let now = sys::mono_now();
            slot.heartbeat_ns.store(now, Relaxed);
            let ns = now.saturating_sub(start);
            h.count.fetch_add(1, Relaxed);
            h.sum_ns.fetch_add(ns, Relaxed);
            h.buckets[layout::bucket_of(ns)].fetch_add(1, Relaxed);
        }
    }

    fn capacity(&self) -> Capacity<'_> {
        Capacity::new(&self.seg, self.opts.maxsize)
    }

    /// Items committed-and-unread plus items buffered in any process.
    fn size(&self) -> u64 {
        self.capacity().size()
    }

    /// Takes one capacity unit of a bounded queue, counting what happened. `Err(())` = full
    /// at the deadline.
    fn reserve(&self, slot: &ProcSlot, deadline: Option<u64>) -> Result<(), ()> {
        let r = self.capacity().take(slot, deadline);
        if r.found_full && self.opts.stats {
            slot.full_events.fetch_add(1, Relaxed);
        }
        if r.timed_out && r.waited_since.is_some() && self.opts.stats {
            slot.put_timeouts.fetch_add(1, Relaxed);
        }
        if let Some(start) = r.waited_since {
            self.observe_wait(slot, &slot.put_blocked, start);
        }
        if r.taken { Ok(()) } else { Err(()) }
    }

    fn put_frame<T>(
        self: &Arc<Self>,
        item: T,
        frame: &[u8],
        deadline: Option<u64>,
    ) -> Result<(), PutError<T>> {
        let local = match self.local(deadline) {
            Ok(l) => l,
            // The deadline passed waiting to attach: as for a full queue.
            Err(Error::Busy { .. }) if deadline.is_some() => return Err(PutError::Full(item)),
            Err(e) => {
                return Err(PutError::Broken {
                    item,
                    reason: e.to_string(),
                });
            }
        };
        if local.closed.load(Relaxed) {
            return Err(PutError::Closed(item));
        }
        let slot = self.my_slot(local);
        if self.opts.maxsize > 0 && self.reserve(slot, deadline).is_err() {
            return Err(PutError::Full(item));
        }
        // From here the item is accepted: counted before it can be read, so gets <= puts.
        let ops = slot.puts.fetch_add(1, SeqCst);
        if self.opts.maxsize > 0 {
            slot.reserving.fetch_sub(1, SeqCst);
        }
        slot.bytes_put.fetch_add(frame.len() as u64, Relaxed);
        self.touch(slot, role::PRODUCER, ops);
        drop(item);
        self.enqueue(local, frame);
        Ok(())
    }

    /// Writes straight into the ring when nothing of ours is pending and the write lock is
    /// free; otherwise appends to the buffer for the feeder (per-process FIFO either way).
    fn enqueue(self: &Arc<Self>, local: &Local, frame: &[u8]) {
        let mut st = local.lock();
        if st.buffer.len() >= BUFFER_HIGH_ITEMS || st.buffer.bytes >= self.seg.ring().1 {
            st = self.await_drain(local, st);
        }
        if st.buffer.is_empty() && !st.busy && self.write_direct(frame, local.slot) {
            self.start_feeder(&mut st);
            return;
        }
        st.buffer.push(frame);
        self.start_feeder(&mut st);
        if st.feeder_idle {
            local.work.notify_one();
        }
    }

    /// Flow control for a producer that outruns its consumers: once this process's buffer
    /// holds [`BUFFER_HIGH_ITEMS`] items (or a ring's worth of bytes), `put` waits until the
    /// feeder has written all of it, so that the next `put` writes into the ring itself
    /// again. It waits only while readers or the feeder make progress: after
    /// [`DRAIN_STALL_NS`] with neither (nobody reads), `put` buffers without limit, as
    /// Python's does, until the feeder moves again.
    fn await_drain<'l>(
        &self,
        local: &'l Local,
        mut st: MutexGuard<'l, LocalState>,
    ) -> MutexGuard<'l, LocalState> {
        let read_pos = || self.seg.data().read_pos.load(Relaxed);
        let mut progress = (st.fed, read_pos());
        let mut since = sys::mono_now();
        while st.feeder_started
            && (st.busy || !st.buffer.is_empty())
            && st.stalled_at != Some(st.fed)
        {
            st = match local.idle.wait_timeout(st, DRAIN_SLICE) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
            let now = sys::mono_now();
            if (st.fed, read_pos()) != progress {
                progress = (st.fed, read_pos());
                since = now;
            } else if now - since >= DRAIN_STALL_NS {
                // Not again until the feeder gets on.
                st.stalled_at = Some(st.fed);
            }
        }
        st
    }

    /// Writes `frame` into the ring from the calling thread if that takes at most a brief
    /// wait for the write lock or for the reader to make room. Waiting here, instead of
    /// handing the item to the feeder at once, keeps a producer that outruns its consumer
    /// in step with it: its buffer does not grow, and no third thread competes for the CPUs
    /// with the two doing the work. A reader that makes no room within [`DIRECT_WAIT_NS`]
    /// gets the item through the feeder, so `put` never waits longer than that for it.
    fn write_direct(&self, frame: &[u8], slot: usize) -> bool {
        let ch = Channel::new(&self.seg, self.opts.max_item);
        if layout::record_size(frame.len() as u64) > ch.capacity() {
            return false; // streamed in pieces by the feeder
        }
        for _ in 0..DIRECT_TRIES {
            match ch.try_lock_write() {
                Some(g) => {
                    if ch.try_write(&g, frame, slot) {
                        return true;
                    }
                    drop(g);
                    // No room (then wait for some), or a crashed writer's item to end first
                    // (then the feeder does that, after the tries).
                    if !ch.room_for(frame.len())
                        && !ch.await_room(frame.len(), DIRECT_WAIT_NS, READER_STALL_NS)
                    {
                        return false;
                    }
                }
                None => {
                    for _ in 0..DIRECT_LOCK_SPINS {
                        std::hint::spin_loop();
                    }
                }
            }
        }
        false
    }

    fn start_feeder(self: &Arc<Self>, st: &mut LocalState) {
        if st.feeder_started {
            return;
        }
        st.feeder_started = true;
        let me = Arc::clone(self);
        match std::thread::Builder::new()
            .name("mpqueue-feeder".into())
            .spawn(move || me.feed())
        {
            Ok(h) => st.feeder = Some(h),
            Err(_) => st.feeder_started = false, // retried on the next put
        }
    }

    /// The feeder thread: moves buffered frames into the ring until told to stop.
    fn feed(self: Arc<Self>) {
        let Some(local) = self.current_local() else {
            return;
        };
        let ch = Channel::new(&self.seg, self.opts.max_item);
        loop {
            let batch: Vec<Vec<u8>> = {
                let mut st = local.lock();
                while st.buffer.is_empty() && !st.stop {
                    st.feeder_idle = true;
                    st = local.work.wait(st).unwrap_or_else(|p| p.into_inner());
                    st.feeder_idle = false;
                }
                if st.buffer.is_empty() {
                    local.idle.notify_all();
                    return;
                }
                st.busy = true;
                st.buffer.take(FEEDER_BATCH)
            };
            let dropped = self.write_batch(&ch, local, &batch);
            let mut st = local.lock();
            st.busy = false;
            st.fed += 1;
            if dropped > 0 {
                st.dropped += dropped;
                // Once the feeder had to give up, drop what is still buffered as well.
                let rest = st.buffer.take(usize::MAX);
                st.dropped += self.count_dropped(local, &rest);
            }
            local.idle.notify_all();
        }
    }

    /// Writes a batch, holding the write lock only while there is room: when the ring is full
    /// the lock is let go while the feeder waits, so other producers can write (and exit).
    /// Items larger than the ring stream under the lock. While flushing (close or exit),
    /// every wait, the lock's included, ends after `flush_timeout` without a reader making
    /// room. Returns how many items were dropped.
    fn write_batch(&self, ch: &Channel<'_>, local: &Local, batch: &[Vec<u8>]) -> u64 {
        let cancel = || local.abort.load(Relaxed);
        let flushing = || local.stopping.load(Relaxed);
        let progress = channel::Progress::new();
        let stall_ns = self
            .opts
            .flush_timeout
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        // The stall limit applies only while flushing for close or exit.
        let limits = WriteLimits {
            deadline: None,
            cancel: &cancel,
            stall_ns,
            flushing: &flushing,
            progress: &progress,
        };
        let mut i = 0;
        while i < batch.len() {
            let Ok(guard) = ch.lock_write_limited(&limits) else {
                return self.count_dropped(local, &batch[i..]);
            };
            while let Some(frame) = batch.get(i) {
                if ch.fits_whole(frame.len()) && !ch.repair_pending() {
                    if !ch.try_write(&guard, frame, local.slot) {
                        break; // no room: wait for it without the lock
                    }
                } else if ch.write(&guard, frame, local.slot, &limits).is_err() {
                    return self.count_dropped(local, &batch[i..]);
                }
                i += 1;
            }
            drop(guard);
            if let Some(frame) = batch.get(i)
                && ch.wait_room(frame.len(), &limits).is_err()
            {
                return self.count_dropped(local, &batch[i..]);
            }
        }
        0
    }

    /// Counts frames that will never be written as dropped, and gives their capacity back.
    fn count_dropped(&self, local: &Local, frames: &[Vec<u8>]) -> u64 {
        if frames.is_empty() {
            return 0;
        }
        let n = frames.len() as u64;
        let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
        procs::count_dropped(&self.seg, local.slot, n, bytes);
        n
    }

    /// Takes the next item's bytes into `buf`.
    fn get_frame(
        &self,
        deadline: Option<u64>,
        nowait: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), GetError> {
        let local = self.local(deadline).map_err(|e| match e {
            Error::Busy { .. } if deadline.is_some() => GetError::Empty,
            e => GetError::Broken(e.to_string()),
        })?;
        if local.closed.load(Relaxed) {
            return Err(GetError::Closed);
        }
        let slot = self.my_slot(local);
        self.touch(slot, role::CONSUMER, slot.gets.load(Relaxed));
        let ch = Channel::new(&self.seg, self.opts.max_item);
        let mut waited_since: Option<u64> = None;
        let mut found_empty = false;
        let outcome = loop {
            // With an item of ours parked, go straight to the lock: its writer may be gone
            // with nothing more to publish, and the read repairs that.
            if !ch.has_data() && local.parked().is_none() {
                found_empty = true;
                if nowait {
                    break Err(GetError::Empty);
                }
                // Time only waits longer than a brief spin (no clock read on the fast path).
                if !sync::spin_briefly(|| ch.has_data()) {
                    waited_since.get_or_insert_with(sys::mono_now);
                    if !ch.wait_data(deadline) {
                        slot.get_timeouts.fetch_add(1, Relaxed);
                        break Err(GetError::Empty);
                    }
                }
            }
            let lock_deadline = deadline.map(|d| d.max(sys::mono_now() + LOCK_GRACE_NS));
            let guard = match ch.lock_read(lock_deadline) {
                Ok(g) => g,
                Err(ReadStop::Deadline | ReadStop::Parked) => break Err(GetError::Empty),
                Err(ReadStop::Broken(r) | ReadStop::Corrupt(r)) => break Err(GetError::Broken(r)),
            };
            let read = {
                let mut parked = local.parked();
                let mut me = Reader {
                    slot: local.slot,
                    parked: &mut parked,
                };
                ch.read(&guard, buf, deadline, &mut me)
            };
            match read {
                Ok(true) => {
                    // Counted under the read lock, after `consumed` (so gets <= puts in any
                    // snapshot: the Release here, after the Acquire of `write_pos` that
                    // followed the producer's count, orders it for a reader that loads
                    // `gets` first). Only the lock's holder writes a live slot's `gets`: a
                    // load and a store, no locked instruction or fence.
                    let gets = slot.gets.load(Relaxed);
                    slot.gets.store(gets + 1, Release);
                    let bytes = slot.bytes_got.load(Relaxed);
                    slot.bytes_got.store(bytes + buf.len() as u64, Relaxed);
                    break Ok(());
                }
                Ok(false) => {
                    if nowait || deadline.is_some_and(|d| sys::mono_now() >= d) {
                        break Err(GetError::Empty);
                    }
                }
                Err(ReadStop::Parked) => {
                    // Another live process's item is at the head: wait for it to come back.
                    drop(guard);
                    found_empty = true;
                    let now = sys::mono_now();
                    if nowait || deadline.is_some_and(|d| now >= d) {
                        break Err(GetError::Empty);
                    }
                    waited_since.get_or_insert(now);
                    let left = deadline.map_or(PARKED_POLL, |d| {
                        PARKED_POLL.min(Duration::from_nanos(d - now))
                    });
                    std::thread::sleep(left);
                }
                Err(ReadStop::Deadline) => break Err(GetError::Empty),
                Err(ReadStop::Corrupt(r)) => break Err(GetError::Corrupt(r)),
                Err(ReadStop::Broken(r)) => break Err(GetError::Broken(r)),
            }
        };
        if found_empty && self.opts.stats {
            slot.empty_events.fetch_add(1, Relaxed);
        }
        if let Some(start) = waited_since {
            self.observe_wait(slot, &slot.get_blocked, start);
        }
        outcome
    }

    fn close(&self) {
        if let Some(local) = self.current_local() {
            local.closed.store(true, Relaxed);
            local.stopping.store(true, Relaxed);
            local.lock().stop = true;
            local.work.notify_all();
        } else if let Ok(local) = self.local(None) {
            local.closed.store(true, Relaxed);
        }
    }

    /// Waits until the feeder has written everything and exited (after `close`).
    fn join_feeder(&self, local: &Local) -> Result<(), JoinError> {
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
    fn abandon_parked(&self, local: &Local) {
        let mut parked = local.parked();
        if parked.is_none() {
            return;
        }
        let ch = Channel::new(&self.seg, self.opts.max_item);
        let wait = self.opts.flush_timeout.unwrap_or(DEFAULT_FLUSH_TIMEOUT);
        let deadline = sys::mono_now().saturating_add(wait.as_nanos().min(u64::MAX as u128) as u64);
        if let Ok(guard) = ch.lock_read(Some(deadline)) {
            let mut me = Reader {
                slot: local.slot,
                parked: &mut parked,
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
    fn remove_files(&self) {
        for path in &self.seg.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Core {
    /// Before `fork` (in the parent): reserves a slot for the child about to be made, so
    /// the queue stays while the child lives even if every other process detaches first.
    pub(crate) fn reserve_for_child(&self) -> Option<usize> {
        procs::reserve_for_child(&self.seg)
    }

    /// After `fork`, in the parent: the reserved slot is the child's.
    pub(crate) fn assign_child(&self, slot: usize, child: u32) {
        procs::assign_child(&self.seg, slot, child);
    }

    /// After `fork` failed: gives the reserved slot back.
    pub(crate) fn unreserve(&self, slot: usize) {
        procs::unreserve(&self.seg, slot);
    }

    /// In the child after `fork`: this process holds the slot reserved for it.
    pub(crate) fn hold_claim(&self, slot: usize) {
        procs::assign_child(&self.seg, slot, sys::pid());
        self.restore_claim(slot);
    }

    fn restore_claim(&self, slot: usize) {
        self.claim
            .store(registry::generation() << 16 | slot as u64, SeqCst);
    }

    /// Takes this process's reserved slot, if it holds one.
    fn take_claim(&self) -> Option<usize> {
        let c = self.claim.load(SeqCst);
        (c != 0
            && c >> 16 == registry::generation()
            && self.claim.compare_exchange(c, 0, SeqCst, Relaxed).is_ok())
        .then_some((c & 0xffff) as usize)
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

/// Flushes and detaches on drop of the last handle in a process.
struct Handle {
    core: Arc<Core>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.shutdown_process();
    }
}

/// A multi-producer, multi-consumer FIFO queue shared between processes, with the behaviour
/// of Python's `multiprocessing.Queue`.
///
/// - `put` serialises the item (bincode) in the caller, so encode errors come back to the
///   caller (Python reports them later from its feeder thread); then, if nothing of this
///   process is waiting and the channel's write lock is free, it writes straight into the
///   shared ring; otherwise it appends to this process's buffer, which a feeder thread
///   (started on the first `put` in each process) drains into the ring. Items from one
///   process arrive in the order they were put.
/// - Flow control (a deliberate difference from Python): while a consumer keeps reading,
///   an unbounded `put` that finds the ring full waits (at most 0.5 ms) for room instead of
///   buffering at once, and one whose process already buffers 1024 items (or a ring's
///   worth of bytes) waits for the feeder to write them, so a producer faster than its
///   consumers runs at their pace instead of filling its memory. When nobody reads, `put`
///   does not block: after one wait of 20 ms without progress it buffers without limit, as
///   Python's does, until a reader comes back.
/// - `maxsize > 0` bounds the items in the queue, counted from `put` (buffered ones
///   included) until `get` returns them, exactly like Python's semaphore.
/// - Handles are cheap to clone; clones in one process share one buffer and feeder.
///   Children made with [`crate::process::fork`] inherit the queue.
/// - Every queue publishes live counters in a stats segment: see [`crate::observe`].
///
/// # Examples
/// ```
/// use mpqueue::Queue;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?; unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let q: Queue<String> = Queue::new(0)?;
/// let child = mpqueue::process::fork({
///     let q = q.clone();
///     move || {
///         q.put("hello from the child".to_string()).unwrap();
///         0
///     }
/// })?;
/// assert_eq!(q.get()?, "hello from the child");
/// assert_eq!(child.join()?, 0);
/// # Ok(()) }
/// ```
pub struct Queue<T> {
    handle: Arc<Handle>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            handle: self.handle.clone(),
            _items: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.handle.core.seg.display_name)
            .field("maxsize", &self.handle.core.opts.maxsize)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// Per-thread buffers for encoding in `put` and receiving in `get`, so the fast path
    /// allocates nothing.
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DECODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Buffers above this are not kept between calls.
const SCRATCH_KEEP: usize = (4 << 20) + (64 << 10);

/// Runs `f` with this thread's scratch buffer, taken out for the call (so a `Serialize`
/// impl that itself uses a queue just gets a fresh one) and put back after.
fn with_scratch<R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<u8>>>,
    f: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    let taken = key
        .try_with(|c| c.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)).ok())
        .ok()
        .flatten();
    let mut buf = taken.unwrap_or_default();
    let r = f(&mut buf);
    if buf.capacity() <= SCRATCH_KEEP {
        let _ = key.try_with(|c| {
            if let Ok(mut b) = c.try_borrow_mut() {
                *b = buf;
            }
        });
    }
    r
}

fn deadline_after(timeout: Duration) -> u64 {
    sys::mono_now().saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX))
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Creates an anonymous queue, shared with children forked afterwards.
    /// `maxsize == 0` means unbounded.
    ///
    /// # Errors
    /// [`Error`] if the shared memory cannot be created (see [`Builder::create`]).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u32>::new(2)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert!(q.full());
    /// assert!(q.put_nowait(3).unwrap_err().is_full());
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(maxsize: usize) -> Result<Self, Error> {
        Self::builder().maxsize(maxsize).create()
    }

    /// Starts building a queue (named or anonymous, with options).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<Vec<u8>>::builder().name("jobs-doc").maxsize(100).create()?;
    /// assert_eq!(q.maxsize(), 100);
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn builder() -> Builder<T> {
        Builder::new()
    }

    /// Attaches to the named queue `name` created by another process.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::Corrupt`] (not an mpqueue
    /// segment), [`Error::Incompatible`], [`Error::Removed`], [`Error::InvalidName`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let created = mpqueue::Queue::<u64>::builder().name("open-doc").create()?;
    /// let opened = mpqueue::Queue::<u64>::open("open-doc")?;
    /// created.put(7)?;
    /// assert_eq!(opened.get()?, 7);
    /// assert!(matches!(mpqueue::Queue::<u64>::open("missing"), Err(mpqueue::Error::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::builder().open(name)
    }

    /// Removes the named queue's shared memory. Processes attached keep using it; nobody
    /// new can open it. Also removes a crashed creator's leftovers. Returns whether anything
    /// was removed.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::PermissionDenied`], [`Error::Io`].
    pub fn unlink(name: &str) -> Result<bool, Error> {
        segment::unlink(&segment::queue_dir(), name)
    }

    fn core(&self) -> &Core {
        &self.handle.core
    }

    fn put_deadline(&self, item: T, deadline: Option<u64>) -> Result<(), PutError<T>> {
        with_scratch(&ENCODE_BUF, |frame| {
            match codec::encode_into(&item, self.core().opts.max_item, frame) {
                Ok(()) => self.handle.core.put_frame(item, frame, deadline),
                Err(EncodeError::TooLarge(size)) => Err(PutError::TooLarge {
                    item,
                    size,
                    max: self.core().opts.max_item as usize,
                }),
                Err(EncodeError::Failed(reason)) => Err(PutError::Encode { item, reason }),
            }
        })
    }

    /// Puts `item`, waiting as long as the queue is full.
    ///
    /// # Errors
    /// [`PutError::Closed`] after [`close`](Self::close); [`PutError::TooLarge`] and
    /// [`PutError::Encode`] if the item cannot be encoded. The item comes back in each.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
    }

    /// Puts `item`, waiting at most `timeout` for room (a zero timeout does not wait).
    ///
    /// # Errors
    /// [`PutError::Full`] if the queue was still full at the deadline; as for [`put`](Self::put).
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_deadline(item, Some(deadline_after(timeout)))
    }

    /// Puts `item` only if there is room now.
    ///
    /// # Errors
    /// [`PutError::Full`] if the queue is full; as for [`put`](Self::put).
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, Some(0))
    }

    /// Alias of [`put_nowait`](Self::put_nowait).
    ///
    /// # Errors
    /// As for [`put_nowait`](Self::put_nowait).
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_nowait(item)
    }

    fn get_deadline(&self, deadline: Option<u64>, nowait: bool) -> Result<T, GetError> {
        let core = self.core();
        with_scratch(&DECODE_BUF, |bytes| {
            core.get_frame(deadline, nowait, bytes)?;
            match codec::decode(bytes, core.opts.max_item) {
                Ok(item) => Ok(item),
                Err(e) => {
                    if let Some(l) = core.current_local() {
                        core.my_slot(l).decode_errors.fetch_add(1, Relaxed);
                    }
                    Err(GetError::Decode {
                        len: bytes.len(),
                        reason: e.to_string(),
                    })
                }
            }
        })
    }

    /// Removes and returns the oldest item, waiting as long as the queue is empty.
    ///
    /// # Errors
    /// [`GetError::Closed`] after [`close`](Self::close); [`GetError::Decode`] if the bytes
    /// are not a `T` (that item is gone, the queue goes on); [`GetError::Corrupt`].
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None, false)
    }

    /// Removes and returns the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetError::Empty`] if nothing arrived in time; as for [`get`](Self::get).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert_eq!(q.get_timeout(Duration::from_millis(10)), Err(mpqueue::GetError::Empty));
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_deadline(Some(deadline_after(timeout)), false)
    }

    /// Removes and returns the oldest item only if one is in the channel now.
    ///
    /// Items still in a feeder buffer (of any process) are not visible yet; if another
    /// process is copying an item out, this waits up to 50 ms for it.
    ///
    /// # Errors
    /// [`GetError::Empty`]; as for [`get`](Self::get).
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.get_deadline(Some(sys::mono_now()), true)
    }

    /// Alias of [`get_nowait`](Self::get_nowait).
    ///
    /// # Errors
    /// As for [`get_nowait`](Self::get_nowait).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_nowait()
    }

    /// Approximate number of items in the queue: put (including those still in any
    /// process's feeder buffer) and not yet got. Like Python, it can be stale by the time
    /// it returns.
    pub fn qsize(&self) -> usize {
        self.core().size() as usize
    }

    /// Alias of [`qsize`](Self::qsize).
    pub fn len(&self) -> usize {
        self.qsize()
    }

    /// Whether [`qsize`](Self::qsize) is 0. Unlike Python's `empty()`, which asks whether
    /// the pipe has bytes, this counts buffered items too, so it is `false` right after a
    /// `put` in any process. Approximate.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Alias of [`empty`](Self::empty).
    pub fn is_empty(&self) -> bool {
        self.empty()
    }

    /// Whether a bounded queue holds `maxsize` items. Approximate; always `false` when
    /// unbounded.
    pub fn full(&self) -> bool {
        let m = self.core().opts.maxsize;
        m > 0 && self.core().size() >= m
    }

    /// The capacity in items; 0 means unbounded.
    pub fn maxsize(&self) -> usize {
        self.core().opts.maxsize as usize
    }

    /// The queue's name (named queues) or label / generated id (anonymous).
    pub fn name(&self) -> &str {
        &self.core().seg.display_name
    }

    /// Items this process has put that are not in the shared channel yet (its feeder
    /// buffer, including a batch the feeder is writing).
    pub fn buffered(&self) -> usize {
        let core = self.core();
        core.current_local().map_or(0, |l| {
            let s = core.my_slot(l);
            s.puts
                .load(Relaxed)
                .saturating_sub(s.committed.load(Relaxed))
                .saturating_sub(s.dropped.load(Relaxed)) as usize
        })
    }

    /// Closes the queue in this process: `put` and `get` fail with `Closed` from now on; the
    /// feeder flushes what is buffered and exits. Does not wait (see
    /// [`join_thread`](Self::join_thread)). Other processes are not affected.
    pub fn close(&self) {
        self.core().close();
    }

    /// Waits until the feeder has flushed everything buffered and exited. Call after
    /// [`close`](Self::close). Returns at once after [`cancel_join_thread`](Self::cancel_join_thread).
    ///
    /// # Errors
    /// [`JoinError::NotClosed`] if the queue is not closed; [`JoinError::Stalled`] if nobody
    /// read for the flush timeout and the rest was dropped.
    pub fn join_thread(&self) -> Result<(), JoinError> {
        match self.core().current_local() {
            Some(l) => self.core().join_feeder(l),
            None => Ok(()),
        }
    }

    /// Lets this process exit without flushing its buffer: at exit (or when the last handle
    /// drops) buffered items are dropped and counted (`dropped` in the stats) instead.
    pub fn cancel_join_thread(&self) {
        if let Ok(l) = self.core().local(None) {
            l.cancel_join.store(true, Relaxed);
        }
    }
}

/// Options for a new queue, or for opening a named one. See [`Queue::builder`].
#[derive(Debug, Clone)]
pub struct Builder<T> {
    name: Option<String>,
    label: Option<String>,
    maxsize: usize,
    capacity: usize,
    max_item: usize,
    /// `max_item_size` as set by the caller (an opener's own limit).
    max_item_set: Option<usize>,
    max_processes: usize,
    mode: u32,
    dir: Option<PathBuf>,
    stats: Option<bool>,
    flush_timeout: Option<Duration>,
    open_existing: bool,
    _items: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> Builder<T> {
    fn new() -> Self {
        Builder {
            name: None,
            label: None,
            maxsize: 0,
            capacity: DEFAULT_CAPACITY_BYTES,
            max_item: DEFAULT_MAX_ITEM,
            max_item_set: None,
            max_processes: DEFAULT_MAX_PROCESSES,
            mode: 0o600,
            dir: None,
            stats: None,
            flush_timeout: Some(DEFAULT_FLUSH_TIMEOUT),
            open_existing: false,
            _items: PhantomData,
        }
    }

    /// Makes a named queue that unrelated processes can [`Queue::open`].
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A label shown by the observers for an anonymous queue (default: a generated id).
    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Capacity in items; 0 (the default) means unbounded.
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// Bytes of the shared ring (rounded up to a power of two, at least 4 KiB; default
    /// 1 MiB). Larger items stream through it.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Largest encoded item accepted (default 64 MiB).
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item = bytes;
        self.max_item_set = Some(bytes);
        self
    }

    /// How many processes can be attached at once (default 64).
    pub fn max_processes(mut self, n: usize) -> Self {
        self.max_processes = n;
        self
    }

    /// Gives the owner's group read/write access to the queue's files (mode 0660 instead of
    /// 0600), and creates the directory 0750 (not 0700) if this queue is the first in it.
    ///
    /// Without it, the directory and every segment must belong to this user (the effective
    /// uid) and be writable by no one else, checked on the opened descriptors; anything else
    /// is refused with [`Error::Untrusted`]. With it, a directory or segment owned by another
    /// user is trusted when its group is one of this user's, but never one that others
    /// (outside the group) may write.
    pub fn group_access(mut self, yes: bool) -> Self {
        self.mode = if yes { 0o660 } else { 0o600 };
        self
    }

    /// The segment directory (default `$MPQUEUE_DIR`, else `/dev/shm/mpqueue-UID`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Turns this process's per-operation counters on or off (default on, or
    /// `MPQUEUE_STATS=off`). Sizes, liveness and capacity accounting are always kept.
    pub fn stats(mut self, on: bool) -> Self {
        self.stats = Some(on);
        self
    }

    /// How long closing (or exiting) waits for a reader to make room before it drops what
    /// is still buffered; `None` waits for ever, like Python. Default 10 s.
    pub fn flush_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// With a name: open the queue if it exists instead of failing with `AlreadyExists`.
    pub fn open_or_create(mut self, yes: bool) -> Self {
        self.open_existing = yes;
        self
    }

    fn opts(&self, maxsize: u64, max_item: u64) -> Opts {
        let stats = self.stats.unwrap_or_else(|| {
            !matches!(
                std::env::var(STATS_ENV).as_deref(),
                Ok("off" | "0" | "false")
            )
        });
        Opts {
            maxsize,
            max_item,
            stats,
            flush_timeout: self.flush_timeout,
        }
    }

    /// Creates the queue (or opens it, with [`open_or_create`](Self::open_or_create)).
    ///
    /// # Errors
    /// [`Error::InvalidOption`], [`Error::InvalidName`], [`Error::AlreadyExists`],
    /// [`Error::PermissionDenied`], [`Error::Io`] (e.g. `/dev/shm` full).
    pub fn create(self) -> Result<Queue<T>, Error> {
        let capacity = self
            .capacity
            .max(4096)
            .checked_next_power_of_two()
            .filter(|&c| c <= 1 << 30)
            .ok_or_else(|| Error::InvalidOption("capacity_bytes must be at most 1 GiB".into()))?;
        if self.max_item == 0 || self.max_item > MAX_ITEM_LIMIT {
            return Err(Error::InvalidOption(
                "max_item_size must be 1 byte to 1 TiB".into(),
            ));
        }
        if self.max_processes == 0 || self.max_processes > 4096 {
            return Err(Error::InvalidOption(
                "max_processes must be 1 to 4096".into(),
            ));
        }
        if self.maxsize > i64::MAX as usize {
            return Err(Error::InvalidOption("maxsize is too large".into()));
        }
        if let Some(n) = &self.name {
            segment::validate_name(n)?;
        }
        let label = match &self.label {
            Some(l) if l.len() > layout::NAME_MAX => {
                return Err(Error::InvalidOption(
                    "label is longer than 128 bytes".into(),
                ));
            }
            Some(l) => l.clone(),
            None => format!("anon-{}-{}", sys::pid(), next_anon_id()),
        };
        let params = CreateParams {
            name: self.name.clone(),
            label,
            maxsize: self.maxsize as u64,
            ring_capacity: capacity,
            max_item: self.max_item as u64,
            slots: self.max_processes,
            mode: self.mode,
            dir: self.dir.clone().unwrap_or_else(segment::queue_dir),
        };
        let mut tries = 0;
        let seg = loop {
            match segment::create(&params) {
                Err(Error::AlreadyExists { name }) if self.open_existing => {
                    match self.open_ref(&name) {
                        // It went away between the two: create it after all.
                        Err(Error::NotFound { .. } | Error::Removed { .. }) if tries < RETRIES => {
                            tries += 1;
                        }
                        other => return other,
                    }
                }
                other => break other?,
            }
        };
        let opts = self.opts(params.maxsize, params.max_item);
        let core = Core::new(seg, opts)?;
        Ok(Queue {
            handle: Arc::new(Handle { core }),
            _items: PhantomData,
        })
    }

    /// Attaches to the existing named queue `name` (its size limits come from the segment).
    ///
    /// # Errors
    /// As for [`Queue::open`].
    pub fn open(self, name: &str) -> Result<Queue<T>, Error> {
        self.open_ref(name)
    }

    fn open_ref(&self, name: &str) -> Result<Queue<T>, Error> {
        let dir = self.dir.clone().unwrap_or_else(segment::queue_dir);
        let mut tries = 0;
        loop {
            let seg = segment::open(&dir, name, self.mode & 0o070 != 0)?;
            let h = seg.stats();
            // The item limit is read from shared memory: bounded by this process's own.
            let max_item = h.max_item.load(Relaxed);
            if max_item == 0 || max_item > MAX_ITEM_LIMIT as u64 {
                return Err(Error::Corrupt {
                    path: seg.paths.last().cloned().unwrap_or_default(),
                    reason: format!("item limit {max_item} is out of range"),
                });
            }
            let max_item = self
                .max_item_set
                .map_or(max_item, |m| max_item.min(m as u64));
            let opts = self.opts(h.maxsize.load(Relaxed), max_item);
            match Core::new(seg, opts) {
                // The last process detached as we attached: look the name up again.
                Err(Error::Removed { .. }) if tries < RETRIES => tries += 1,
                Err(e) => return Err(e),
                Ok(core) => {
                    return Ok(Queue {
                        handle: Arc::new(Handle { core }),
                        _items: PhantomData,
                    });
                }
            }
        }
    }
}

fn next_anon_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}
