//! `Queue<T>`: Python's `multiprocessing.Queue` over the shared channel, with a per-process
//! buffer and feeder thread, capacity accounting for `maxsize`, and live counters.

mod builder;
mod core;
mod feeder;

pub(crate) use self::core::Core;
pub use self::core::DEFAULT_FLUSH_TIMEOUT;
pub use builder::{
    Builder, DEFAULT_CAPACITY_BYTES, DEFAULT_MAX_ITEM, DEFAULT_MAX_PROCESSES, STATS_ENV,
};

use crate::codec::{self, EncodeError};
use crate::error::{Error, GetError, JoinError, PutError};
use crate::segment;
use crate::sys;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Flushes and detaches on drop of the last handle in a process.
pub(crate) struct Handle {
    pub(crate) core: Arc<Core>,
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
                        core.counters(l).decode_error();
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
