//! One process's side of a queue: its feeder buffer, the feeder's state, its stats slot,
//! the streamed item it parked, and an error a batch put off.

use crate::channel::Partial;
use crate::error::GetError;
use crate::segment::SlotIndex;
use crate::stats::PutTime;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// This process's side of a queue: its buffer, feeder and stats slot. Replaced (never freed)
/// in a forked child, where the parent's copy may be locked by a thread that does not exist.
pub(super) struct Local {
    pub(super) generation: u64,
    pub(super) slot: SlotIndex,
    pub(super) state: Mutex<LocalState>,
    /// Feeder: items or stop arrived.
    pub(super) work: Condvar,
    /// Flushers: the feeder went idle or exited.
    pub(super) idle: Condvar,
    pub(super) closed: AtomicBool,
    /// Set by close/exit: the feeder exits once the buffer is empty, and stalls count.
    pub(super) stopping: AtomicBool,
    pub(super) cancel_join: AtomicBool,
    /// Set at exit after cancel_join_thread: the feeder drops everything at once.
    pub(super) abort: AtomicBool,
    pub(super) detached: AtomicBool,
    /// A streamed item this process's `get` timed out in (see `Channel::read`).
    pub(super) parked: Mutex<Option<Partial>>,
    /// When the put timeline's next period starts (see `Counters`).
    pub(super) next_point: AtomicU64,
    /// An error a batch `get` put off for the next call (see [`Local::defer`]).
    deferred: Mutex<Option<GetError>>,
    has_deferred: AtomicBool,
}

/// An encoded item waiting for the feeder, with when it was put.
pub(super) struct Frame {
    pub(super) bytes: Vec<u8>,
    pub(super) put: PutTime,
}

/// Encoded frames waiting for the feeder, oldest first, with their total size.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) frames: VecDeque<Frame>,
    pub(super) bytes: u64,
}

impl Pending {
    pub(super) fn push(&mut self, frame: &[u8], put: PutTime) {
        self.frames.push_back(Frame {
            bytes: frame.to_vec(),
            put,
        });
        self.bytes += frame.len() as u64;
    }

    /// Removes and returns the oldest `n` frames (all of them if there are fewer).
    pub(super) fn take(&mut self, n: usize) -> Vec<Frame> {
        let taken: Vec<Frame> = self.frames.drain(..n.min(self.frames.len())).collect();
        self.bytes -= taken.iter().map(|f| f.bytes.len() as u64).sum::<u64>();
        taken
    }

    /// When the oldest buffered frame was put (0: none is).
    pub(super) fn oldest_put(&self) -> u64 {
        self.frames.front().map_or(0, |f| f.put.at_ns())
    }

    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[derive(Default)]
pub(super) struct LocalState {
    pub(super) buffer: Pending,
    /// The feeder holds a batch taken from `buffer`.
    pub(super) busy: bool,
    /// Batches the feeder has finished with (written or dropped).
    pub(super) fed: u64,
    /// `fed` when a `put` last waited a whole slice for the feeder in vain.
    pub(super) stalled_at: Option<u64>,
    pub(super) feeder: Option<JoinHandle<()>>,
    pub(super) feeder_started: bool,
    /// The feeder should exit once the buffer is empty.
    pub(super) stop: bool,
    /// The feeder sleeps on `work` (so a put must notify it).
    pub(super) feeder_idle: bool,
    /// Items the feeder dropped (stall, abort or broken segment).
    pub(super) dropped: u64,
}

impl Local {
    pub(super) fn lock(&self) -> MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The parked item (locked briefly, to look, or by the read that parks or resumes it).
    pub(super) fn parked(&self) -> MutexGuard<'_, Option<Partial>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Local {
    /// A `Local` for stats slot `slot`, made in process generation `generation`.
    pub(super) fn new(generation: u64, slot: SlotIndex) -> Self {
        Local {
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
            next_point: AtomicU64::new(0),
            deferred: Mutex::new(None),
            has_deferred: AtomicBool::new(false),
        }
    }

    /// Keeps `e` for this process's next `get` (a batch that got items before a bad one
    /// returns them, and the error comes next).
    pub(super) fn defer(&self, e: GetError) {
        let mut d = self.deferred.lock().unwrap_or_else(|p| p.into_inner());
        *d = Some(e);
        // Changed only under the mutex, so a take and a defer never lose each other's.
        self.has_deferred
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The error a batch put off, if any (taken).
    #[inline]
    pub(super) fn take_deferred(&self) -> Option<GetError> {
        if !self.has_deferred.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let mut d = self.deferred.lock().unwrap_or_else(|p| p.into_inner());
        self.has_deferred
            .store(false, std::sync::atomic::Ordering::SeqCst);
        d.take()
    }
}
