//! `SimpleQueue<T>`: Python's `multiprocessing.SimpleQueue`, with no feeder thread and no
//! `maxsize`: `put` writes into the channel in the caller and blocks while the ring is full.

use super::Queue;
use super::core::Core;
use super::items::{ENCODE_BUF, with_scratch};
use crate::channel::{Channel, Progress, WriteLimits, WriteStop};
use crate::codec::{self, EncodeError};
use crate::error::{BrokenKind, Error, GetError, PutError};
use crate::interrupt;
use crate::layout::STAMP_LEN;
use crate::procs;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

impl Core {
    /// Writes one encoded item into the ring from the calling thread, waiting while the ring
    /// is full.
    ///
    /// An item that fits the ring whole first waits for room without the write lock, and
    /// nothing is counted or written if the `deadline` passes first (`PutError::Full`) or
    /// an `interruptible` check stops it (`PutError::Interrupted`); once there is room it
    /// is written at once, unless another writer takes the room first: then it waits
    /// holding the lock, as Python's `SimpleQueue` holds its pipe's lock. A larger item is
    /// written in pieces, holding the lock throughout.
    fn put_now<T>(
        self: &Arc<Self>,
        item: T,
        frame: &[u8],
        deadline: Option<u64>,
    ) -> Result<(), PutError<T>> {
        let (local, item) = self.put_local(item, deadline)?;
        let ch = Channel::new(&self.seg, self.opts.max_item);
        let most = frame.len() + STAMP_LEN;
        if ch.fits_whole(most) {
            let progress = Progress::new();
            let limits = WriteLimits {
                deadline,
                cancel: &interrupt::check_now,
                stall_ns: None,
                flushing: &|| false,
                progress: &progress,
            };
            match ch.wait_room(most, &limits) {
                Ok(()) => {}
                Err(WriteStop::Broken(kind, detail)) => {
                    return Err(PutError::Broken { item, kind, detail });
                }
                Err(WriteStop::Cancelled) => return Err(PutError::Interrupted(item)),
                Err(_) => return Err(PutError::Full(item)),
            }
        }
        let put = self.counters(local).accepted(frame.len(), false);
        let progress = Progress::new();
        let limits = WriteLimits {
            deadline: None,
            cancel: &|| false,
            stall_ns: None,
            flushing: &|| false,
            progress: &progress,
        };
        let written = ch
            .lock_write_limited(&limits)
            .and_then(|g| ch.write(&g, frame, put.stamp(), local.slot, &limits));
        match written {
            Ok(()) => Ok(()),
            Err(stop) => {
                // Accepted and never written: counted as dropped, and so as lost.
                procs::count_dropped(&self.seg, local.slot, 1, frame.len() as u64);
                let (kind, detail) = match stop {
                    WriteStop::Broken(kind, detail) => (kind, detail),
                    other => (BrokenKind::Lock, format!("write stopped: {other:?}")),
                };
                Err(PutError::Broken { item, kind, detail })
            }
        }
    }
}

/// Python's `multiprocessing.SimpleQueue`: an unbounded queue whose `put` writes into the
/// shared channel in the calling thread, with no feeder thread (it blocks while the ring is
/// full, as Python's blocks on a full pipe), and `get`, `empty` and `close`.
///
/// A process that dies in `put` is repaired after as with [`Queue`]; a `SimpleQueue` is
/// observed by `mpqueue::observe` and the tools like any queue.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// use mpqueue::SimpleQueue;
/// let q: SimpleQueue<String> = SimpleQueue::new()?;
/// let child = mpqueue::process::fork(|| {
///     q.put("from the child".to_string()).unwrap();
///     0
/// })?;
/// assert_eq!(q.get()?, "from the child");
/// assert_eq!(child.join()?, 0);
/// assert!(q.empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SimpleQueue<T> {
    pub(super) queue: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("queue", &self.queue)
            .finish()
    }
}

impl<T> SimpleQueue<T> {
    /// Creates an anonymous simple queue, shared with children forked afterwards.
    ///
    /// # Errors
    /// [`Error`] if the shared memory cannot be created.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::SimpleQueue::<u8>::new()?;
    /// assert!(q.empty());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        Self::from_builder(Queue::builder())
    }

    /// Creates (or opens) a simple queue with the options of `builder`: a name, a label,
    /// `capacity_bytes`, … A `maxsize` is refused: a `SimpleQueue` is unbounded.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a `maxsize`; as [`Builder::create`](super::Builder::create).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::{Queue, SimpleQueue};
    /// let q = SimpleQueue::<u8>::from_builder(Queue::builder().name("simple-doc"))?;
    /// q.put(3)?;
    /// assert_eq!(Queue::<u8>::open("simple-doc")?.get()?, 3);
    /// assert!(SimpleQueue::<u8>::from_builder(Queue::builder().maxsize(4)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_builder(builder: super::Builder<T>) -> Result<Self, Error> {
        Self::unbounded(builder.create_simple()?)
    }

    /// Attaches to the named simple queue `name`.
    ///
    /// # Errors
    /// As [`Queue::open`]; [`Error::InvalidOption`] if that queue is bounded.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::{Queue, SimpleQueue};
    /// let q = SimpleQueue::<u8>::from_builder(Queue::builder().name("simple-open"))?;
    /// q.put(4)?;
    /// assert_eq!(SimpleQueue::<u8>::open("simple-open")?.get()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::unbounded(Queue::open(name)?)
    }

    /// Attaches to the named simple queue `name` with the options of `builder` that apply
    /// to an existing queue (its directory, …).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::{Queue, SimpleQueue};
    /// let elsewhere = tempfile::tempdir()?;
    /// let q = SimpleQueue::<u8>::from_builder(Queue::builder().dir(elsewhere.path()).name("there"))?;
    /// let same = SimpleQueue::<u8>::open_with(Queue::builder().dir(elsewhere.path()), "there")?;
    /// q.put(6)?;
    /// assert_eq!(same.get()?, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(builder: super::Builder<T>, name: &str) -> Result<Self, Error> {
        Self::unbounded(builder.open(name)?)
    }

    /// `queue` as a simple queue, if it is unbounded.
    pub(super) fn unbounded(queue: Queue<T>) -> Result<Self, Error> {
        // An existing queue opened by name may be bounded: its capacity would not hold.
        if queue.maxsize() != 0 {
            return Err(Error::InvalidOption {
                option: "maxsize",
                detail: format!(
                    "a SimpleQueue is unbounded; this queue holds at most {} items",
                    queue.maxsize()
                ),
            });
        }
        Ok(SimpleQueue { queue })
    }

    /// The queue's name (a named queue) or label.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::{Queue, SimpleQueue};
    /// let q = SimpleQueue::<u8>::from_builder(Queue::builder().label("simple-label"))?;
    /// assert_eq!(q.name(), "simple-label");
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.queue.name()
    }

    /// The queue's stats file (see [`Queue::stats_path`]).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::SimpleQueue::<u8>::new()?;
    /// assert!(q.stats_path().exists());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn stats_path(&self) -> &std::path::Path {
        self.queue.stats_path()
    }

    /// Whether no item is in the queue.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::SimpleQueue::<u8>::new()?;
    /// q.put(1)?;
    /// assert!(!q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// Closes the queue in this process: later `put`s and `get`s fail with `Closed`, and a
    /// `get` blocked in another thread returns `Closed`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::SimpleQueue::<u8>::new()?;
    /// q.close();
    /// assert!(q.put(1).unwrap_err().is_closed());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn close(&self) {
        self.queue.close();
    }
}

impl<T: Serialize> SimpleQueue<T> {
    /// Puts `item`, writing it into the channel now; waits while the ring is full.
    ///
    /// # Errors
    /// [`PutError::Closed`] after [`close`](Self::close); [`PutError::TooLarge`] and
    /// [`PutError::Encode`] if it cannot be encoded; [`PutError::Broken`] if the channel is
    /// unusable. The item comes back in each.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::SimpleQueue::<(u8, String)>::new()?;
    /// q.put((1, "one".into()))?;
    /// assert_eq!(q.get()?, (1, "one".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None)
    }

    /// Like [`put`](Self::put), but while the ring is full waits at most `timeout` for
    /// room, then gives the item back in [`PutError::Full`] (nothing was counted or
    /// written). Python's `SimpleQueue` has no timeout: this is for a caller that must stay
    /// responsive, waiting in slices. (An item larger than the ring, written in pieces, is
    /// not timed.)
    ///
    /// # Errors
    /// [`PutError::Full`] after the timeout; otherwise as [`put`](Self::put).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::SimpleQueue::<Vec<u8>>::from_builder(
    ///     mpqueue::Queue::builder().capacity_bytes(4096),
    /// )?;
    /// q.put(vec![0; 3000])?;
    /// let back = q.put_timeout(vec![1; 3000], Duration::from_millis(10)).unwrap_err();
    /// assert!(back.is_full());
    /// assert_eq!(q.get()?, vec![0; 3000]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: std::time::Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Some(super::items::deadline_after(timeout)))
    }

    fn put_until(&self, item: T, deadline: Option<u64>) -> Result<(), PutError<T>> {
        let core = &self.queue.handle.core;
        let max = core.opts.max_item;
        with_scratch(&ENCODE_BUF, |frame| {
            match codec::encode_into(&item, max, frame) {
                Ok(()) => core.put_now(item, frame, deadline),
                Err(EncodeError::TooLarge(size)) => Err(PutError::TooLarge {
                    item,
                    size,
                    max: max as usize,
                }),
                Err(EncodeError::Failed(reason)) => Err(PutError::Encode { item, reason }),
            }
        })
    }
}

impl<T: DeserializeOwned> SimpleQueue<T> {
    /// Removes and returns the oldest item, waiting as long as the queue is empty.
    ///
    /// # Errors
    /// As [`Queue::get`].
    ///
    /// # Examples
    /// See [`put`](Self::put).
    pub fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }

    /// Like [`get`](Self::get), but gives up with [`GetError::Empty`] after `timeout` (Python's
    /// `SimpleQueue` has no timeout; a caller that must stay responsive waits in slices).
    ///
    /// # Errors
    /// As [`Queue::get_timeout`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::SimpleQueue::<u8>::new()?;
    /// assert!(q.get_timeout(Duration::from_millis(10)).unwrap_err().is_empty());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: std::time::Duration) -> Result<T, GetError> {
        self.queue.get_timeout(timeout)
    }
}
