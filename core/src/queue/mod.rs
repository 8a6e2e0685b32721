//! `Queue<T>`: Python's `multiprocessing.Queue` over the shared channel, with a per-process
//! buffer and feeder thread, capacity accounting for `maxsize`, and live counters.

mod batch;
mod builder;
mod core;
mod feeder;
mod handoff;
mod items;
mod iter;
mod joinable;
mod local;
mod simple;

pub(crate) use self::core::Core;
pub use self::core::DEFAULT_FLUSH_TIMEOUT;
pub use builder::{
    Builder, DEFAULT_CAPACITY_BYTES, DEFAULT_MAX_ITEM, DEFAULT_MAX_PROCESSES, STATS_ENV,
};
pub use handoff::Handoff;
pub use iter::{Iter, TryIter};
pub use joinable::JoinableQueue;
pub use simple::SimpleQueue;

use crate::error::{Error, JoinError};
use crate::segment;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

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

impl<T> Queue<T> {
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
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::Untrusted`],
    /// [`Error::Corrupt`] (not an mpqueue segment), [`Error::Incompatible`],
    /// [`Error::InvalidName`].
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

    fn core(&self) -> &Core {
        &self.handle.core
    }

    /// Approximate number of items in the queue: put (including those still in any
    /// process's feeder buffer) and not yet got. Like Python, it can be stale by the time
    /// it returns.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.qsize(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.core().size() as usize
    }

    /// Alias of [`qsize`](Self::qsize).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert_eq!(q.len(), 0);
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.qsize()
    }

    /// Whether [`qsize`](Self::qsize) is 0. Unlike Python's `empty()`, which asks whether
    /// the pipe has bytes, this counts buffered items too, so it is `false` right after a
    /// `put` in any process. Approximate.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert!(q.empty());
    /// q.put(1)?;
    /// assert!(!q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Alias of [`empty`](Self::empty).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert!(q.is_empty());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.empty()
    }

    /// Whether a bounded queue holds `maxsize` items. Approximate; always `false` when
    /// unbounded.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(1)?;
    /// assert!(!q.full());
    /// q.put(1)?;
    /// assert!(q.full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn full(&self) -> bool {
        let m = self.core().opts.maxsize;
        m > 0 && self.core().size() >= m
    }

    /// Alias of [`full`](Self::full).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert!(!q.is_full()); // unbounded
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.full()
    }

    /// The capacity in items; 0 means unbounded.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// assert_eq!(mpqueue::Queue::<u8>::new(5)?.maxsize(), 5);
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn maxsize(&self) -> usize {
        self.core().opts.maxsize as usize
    }

    /// The queue's name (named queues) or label / generated id (anonymous).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().label("ingest").create()?;
    /// assert_eq!(q.name(), "ingest");
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.core().seg.display_name
    }

    /// The queue's stats file, which observers read (`mpqueue-top`, the exporter,
    /// [`observe`](crate::observe)); its directory is the queue's.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().name("where").create()?;
    /// assert!(q.stats_path().ends_with("q.where.stats"));
    /// assert_eq!(q.stats_path().parent(), Some(mpqueue::queue_dir().as_path()));
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn stats_path(&self) -> &Path {
        // The stats file is always the last path (see `segment::Segments::paths`).
        self.core()
            .seg
            .paths
            .last()
            .map_or(Path::new(""), |p| p.as_path())
    }

    /// Items this process has put that are not in the shared channel yet (its feeder
    /// buffer, including a batch the feeder is writing).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// q.put(1)?; // written straight into the ring: nothing buffered
    /// assert_eq!(q.buffered(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// q.close();
    /// assert!(q.is_closed());
    /// assert!(q.put(1).unwrap_err().is_closed());
    /// assert!(q.get().unwrap_err().is_closed());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn close(&self) {
        self.core().close();
    }

    /// Whether [`close`](Self::close) was called in this process.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert!(!q.is_closed());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.core()
            .current_local()
            .is_some_and(|l| l.closed.load(Relaxed))
    }

    /// Waits until the feeder has flushed everything buffered and exited. Call after
    /// [`close`](Self::close). Returns at once after [`cancel_join_thread`](Self::cancel_join_thread).
    ///
    /// # Errors
    /// [`JoinError::NotClosed`] if the queue is not closed; [`JoinError::Stalled`] if nobody
    /// read for the flush timeout and the rest was dropped.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// assert_eq!(q.join_thread(), Err(mpqueue::JoinError::NotClosed));
    /// q.put(1)?;
    /// q.close();
    /// q.join_thread()?; // everything is in the shared ring now
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_thread(&self) -> Result<(), JoinError> {
        match self.core().current_local() {
            Some(l) => self.core().join_feeder(l),
            None => Ok(()),
        }
    }

    /// Lets this process exit without flushing its buffer: at exit (or when the last handle
    /// drops) buffered items are dropped and counted (`dropped` in the stats) instead.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// q.cancel_join_thread();
    /// q.close();
    /// q.join_thread()?; // returns at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_join_thread(&self) {
        if let Ok(l) = self.core().local(None) {
            l.cancel_join.store(true, Relaxed);
        }
    }
}

/// Removes the named queue `name` from `$MPQUEUE_DIR` (or the default directory).
/// Processes attached keep using it; nobody new can open it. Also removes a crashed
/// creator's leftovers. Returns whether anything was removed.
///
/// # Errors
/// [`Error::InvalidName`], [`Error::PermissionDenied`], [`Error::Untrusted`], [`Error::Io`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let q = mpqueue::Queue::<u8>::builder().name("doomed").create()?;
/// assert!(mpqueue::unlink("doomed")?);
/// assert!(mpqueue::Queue::<u8>::open("doomed").is_err());
/// q.put(1)?; // the attached handle keeps working
/// assert!(!mpqueue::unlink("doomed")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unlink(name: &str) -> Result<bool, Error> {
    segment::unlink(&segment::queue_dir(), name)
}
