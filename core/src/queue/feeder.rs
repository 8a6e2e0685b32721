//! The way into the channel for one process's items: written straight from `put` when
//! possible, else buffered for the feeder thread, with flow control between the two.

use super::core::{Core, Frame, Local, LocalState};
use crate::channel::{Channel, Progress, WriteLimits};
use crate::layout::STAMP_LEN;
use crate::procs;
use crate::segment::SlotIndex;
use crate::stats::PutTime;
use crate::sys;
use std::sync::Arc;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

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

impl Core {
    /// Writes straight into the ring when nothing of ours is pending and the write lock is
    /// free; otherwise appends to the buffer for the feeder (per-process FIFO either way).
    pub(super) fn enqueue(self: &Arc<Self>, local: &Local, frame: &[u8], put: PutTime) {
        let mut st = local.lock();
        if st.buffer.len() >= BUFFER_HIGH_ITEMS || st.buffer.bytes >= self.seg.ring().1 {
            st = self.await_drain(local, st);
        }
        let idle = st.buffer.is_empty() && !st.busy;
        if idle && self.write_direct(frame, put.stamp(), local.slot) {
            self.start_feeder(&mut st);
            return;
        }
        if idle {
            // The oldest item not yet in the ring is this one now.
            self.counters(local).buffered_since(put.at_ns());
        }
        st.buffer.push(frame, put);
        self.start_feeder(&mut st);
        if st.feeder_idle {
            local.work.notify_one();
        }
    }

    /// Writes a batch as `enqueue` writes one item: as many as fit straight into the ring
    /// under one hold of the write lock (when nothing of ours is pending), the rest to the
    /// feeder, in order.
    pub(super) fn enqueue_many(self: &Arc<Self>, local: &Local, frames: &[(&[u8], PutTime)]) {
        let mut st = local.lock();
        if st.buffer.len() >= BUFFER_HIGH_ITEMS || st.buffer.bytes >= self.seg.ring().1 {
            st = self.await_drain(local, st);
        }
        let idle = st.buffer.is_empty() && !st.busy;
        let written = if idle {
            self.write_direct_many(frames, local.slot)
        } else {
            0
        };
        if let Some((_, first)) = frames.get(written) {
            if idle {
                self.counters(local).buffered_since(first.at_ns());
            }
            for (frame, put) in &frames[written..] {
                st.buffer.push(frame, *put);
            }
        }
        self.start_feeder(&mut st);
        if written < frames.len() && st.feeder_idle {
            local.work.notify_one();
        }
    }

    /// Writes the leading frames that fit in the ring now, under one hold of the write lock
    /// (taken as `write_direct` takes it) and published at once; how many it wrote.
    fn write_direct_many(&self, frames: &[(&[u8], PutTime)], slot: SlotIndex) -> usize {
        let ch = Channel::new(&self.seg, self.opts.max_item);
        let mut guard = ch.try_lock_write();
        for _ in 1..DIRECT_TRIES {
            if guard.is_some() {
                break;
            }
            for _ in 0..DIRECT_LOCK_SPINS {
                std::hint::spin_loop();
            }
            guard = ch.try_lock_write();
        }
        let Some(g) = guard else {
            return 0;
        };
        let whole = frames
            .iter()
            .take_while(|(frame, _)| ch.fits_whole(frame.len()));
        ch.try_write_many(&g, whole.map(|(frame, put)| (*frame, put.stamp())), slot)
    }

    /// Flow control for a producer that outruns its consumers: once this process's buffer
    /// holds [`BUFFER_HIGH_ITEMS`] items (or a ring's worth of bytes), `put` waits until the
    /// feeder has written all of it, so that the next `put` writes into the ring itself
    /// again. It waits only while readers or the feeder make progress: after
    /// [`DRAIN_STALL_NS`] with neither (nobody reads), `put` buffers without limit, as
    /// Python's does, until the feeder moves again.
    pub(super) fn await_drain<'l>(
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
    pub(super) fn write_direct(&self, frame: &[u8], stamp: Option<u64>, slot: SlotIndex) -> bool {
        let ch = Channel::new(&self.seg, self.opts.max_item);
        if !ch.fits_whole(frame.len()) {
            return false; // streamed in pieces by the feeder
        }
        let len = frame.len() + STAMP_LEN;
        for _ in 0..DIRECT_TRIES {
            match ch.try_lock_write() {
                Some(g) => {
                    if ch.try_write(&g, frame, stamp, slot) {
                        return true;
                    }
                    drop(g);
                    // No room (then wait for some), or a crashed writer's item to end first
                    // (then the feeder does that, after the tries).
                    if !ch.room_for(len) && !ch.await_room(len, DIRECT_WAIT_NS, READER_STALL_NS) {
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

    #[inline]
    pub(super) fn start_feeder(self: &Arc<Self>, st: &mut LocalState) {
        if !st.feeder_started {
            self.spawn_feeder(st);
        }
    }

    /// `start_feeder`'s way the first time in a process.
    #[cold]
    fn spawn_feeder(self: &Arc<Self>, st: &mut LocalState) {
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
    pub(super) fn feed(self: Arc<Self>) {
        let Some(local) = self.current_local() else {
            return;
        };
        let ch = Channel::new(&self.seg, self.opts.max_item);
        loop {
            let batch: Vec<Frame> = {
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
            self.counters(local).buffered_since(st.buffer.oldest_put());
            local.idle.notify_all();
        }
    }

    /// Writes a batch, holding the write lock only while there is room: when the ring is full
    /// the lock is let go while the feeder waits, so other producers can write (and exit).
    /// Items larger than the ring stream under the lock. While flushing (close or exit),
    /// every wait, the lock's included, ends after `flush_timeout` without a reader making
    /// room. Returns how many items were dropped.
    pub(super) fn write_batch(&self, ch: &Channel<'_>, local: &Local, batch: &[Frame]) -> u64 {
        let cancel = || local.abort.load(Relaxed);
        let flushing = || local.stopping.load(Relaxed);
        let progress = Progress::new();
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
            while let Some(Frame { bytes, put }) = batch.get(i) {
                if ch.fits_whole(bytes.len()) && !ch.repair_pending() {
                    if !ch.try_write(&guard, bytes, put.stamp(), local.slot) {
                        break; // no room: wait for it without the lock
                    }
                } else if ch
                    .write(&guard, bytes, put.stamp(), local.slot, &limits)
                    .is_err()
                {
                    return self.count_dropped(local, &batch[i..]);
                }
                i += 1;
            }
            drop(guard);
            if let Some(frame) = batch.get(i)
                && ch
                    .wait_room(frame.bytes.len() + STAMP_LEN, &limits)
                    .is_err()
            {
                return self.count_dropped(local, &batch[i..]);
            }
        }
        0
    }

    /// Counts frames that will never be written as dropped, and gives their capacity back.
    pub(super) fn count_dropped(&self, local: &Local, frames: &[Frame]) -> u64 {
        if frames.is_empty() {
            return 0;
        }
        let n = frames.len() as u64;
        let bytes: u64 = frames.iter().map(|f| f.bytes.len() as u64).sum();
        procs::count_dropped(&self.seg, local.slot, n, bytes);
        n
    }
}
