//! `JoinableQueue<T>`: Python's `multiprocessing.JoinableQueue`. Consumers mark each item
//! done with `task_done`; `join` waits until every item put has been marked done.

use super::{Builder, Queue};
use crate::channel::Channel;
use crate::error::{Error, TaskDoneError};
use crate::procs;
use crate::segment::FLAG_JOINABLE;
use crate::sync::Event;
use crate::sys;
use crate::tasks;
use std::ops::Deref;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// How long `join` sleeps at most before it looks again (and reaps dead processes, whose
/// items then count as abandoned or lost).
const JOIN_SLICE_NS: u64 = 100_000_000;

/// A [`Queue`] that counts unfinished tasks, as Python's `multiprocessing.JoinableQueue`:
/// every item put is a task, a consumer marks it done with
/// [`task_done`](Self::task_done), and [`join`](Self::join) waits until every item ever
/// put has been marked done. Every method of [`Queue`] works on it (through `Deref`).
///
/// The count lives in shared memory, in per-process counters, so it survives processes
/// coming and going, and a process that dies never makes `join` wait for ever:
/// - items a producer accepted and never wrote (it died, or its flush was cancelled) are
///   lost, and count as done;
/// - items a consumer got and did not mark done when it died or detached are counted as
///   done when its slot is retired (`join` reaps dead processes while it waits), and shown
///   as abandoned;
/// - an item a reader took out of the ring and died with is counted as done too.
///
/// Deliberate difference from Python: `task_done` is counted against the items *this
/// process* got (Python counts against the queue's total), so calling it more times than
/// this process got items is [`TaskDoneError::TooMany`].
///
/// # Examples
/// A pool of workers, and a producer that waits until all its jobs are done:
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// use mpqueue::{JoinableQueue, Queue, process};
/// let jobs: JoinableQueue<Option<u32>> = JoinableQueue::new(0)?;
/// let results: Queue<u32> = Queue::new(0)?;
/// let workers: Vec<_> = (0..2)
///     .map(|_| {
///         process::fork(|| {
///             while let Ok(Some(job)) = jobs.get() {
///                 results.put(job * 2).unwrap();
///                 jobs.task_done().unwrap();
///             }
///             jobs.task_done().unwrap(); // the `None` that stopped it
///             0
///         })
///     })
///     .collect::<Result<_, _>>()?;
/// for job in 0..100 {
///     jobs.put(Some(job))?;
/// }
/// jobs.join(); // every job is done, and its result put
/// assert_eq!(results.qsize(), 100);
/// for _ in &workers {
///     jobs.put(None)?;
/// }
/// for w in workers {
///     assert_eq!(w.join()?, 0);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> std::fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .finish()
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> JoinableQueue<T> {
    /// Creates an anonymous joinable queue of `maxsize` items (0: unbounded), shared with
    /// children forked afterwards.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::JoinableQueue::<u8>::new(10)?;
    /// assert_eq!(q.maxsize(), 10);
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> Result<Self, Error> {
        Self::from_builder(Queue::builder().maxsize(maxsize))
    }

    /// Creates (or opens) a joinable queue with the options of `builder`.
    ///
    /// # Errors
    /// As [`Builder::create`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::{JoinableQueue, Queue};
    /// let q = JoinableQueue::<u8>::from_builder(Queue::builder().name("joinable-doc"))?;
    /// let same = JoinableQueue::<u8>::open("joinable-doc")?;
    /// q.put(1)?;
    /// assert_eq!(same.get()?, 1);
    /// same.task_done()?;
    /// q.join();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_builder(builder: Builder<T>) -> Result<Self, Error> {
        builder.create().map(Self::joinable)
    }

    /// Attaches to the named joinable queue `name`.
    ///
    /// # Errors
    /// As [`Queue::open`].
    ///
    /// # Examples
    /// See [`from_builder`](Self::from_builder).
    pub fn open(name: &str) -> Result<Self, Error> {
        Queue::open(name).map(Self::joinable)
    }

    pub(super) fn joinable(queue: Queue<T>) -> Self {
        queue
            .core()
            .seg
            .stats()
            .flags
            .fetch_or(FLAG_JOINABLE, SeqCst);
        JoinableQueue { queue }
    }

    /// Marks one item this process got as done.
    ///
    /// # Errors
    /// [`TaskDoneError::TooMany`] if this process has already marked as many items done as
    /// it got; [`TaskDoneError::Broken`] if it cannot attach.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert_eq!(q.task_done(), Err(mpqueue::TaskDoneError::TooMany));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let core = self.queue.core();
        let local = core.local(None).map_err(|e| TaskDoneError::Broken {
            detail: e.to_string(),
        })?;
        if local.detached.load(SeqCst) {
            // Its slot is retired (its items counted abandoned) or another process's now.
            return Err(TaskDoneError::Broken {
                detail: "this process has detached from the queue".into(),
            });
        }
        if !core.counters(local).task_done() {
            return Err(TaskDoneError::TooMany);
        }
        self.tasks_event().wake();
        Ok(())
    }

    /// Items put and not yet marked done (nor lost or abandoned), as read now.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unfinished(&self) -> u64 {
        tasks::unfinished(&self.queue.core().seg)
    }

    /// Waits until every item ever put has been marked done (or lost, or abandoned by a
    /// process that went).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::JoinableQueue::<u8>::new(0)?;
    /// q.join(); // nothing put: returns at once
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// [`join`](Self::join), waiting at most `timeout`; whether every item was done.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// assert!(!q.join_timeout(Duration::from_millis(10)));
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.join_timeout(Duration::from_millis(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.join_until(Some(sys::mono_now().saturating_add(ns)))
    }

    fn tasks_event(&self) -> Event<'_> {
        Event {
            seq: &self.queue.core().seg.stats().tasks_seq,
        }
    }

    fn join_until(&self, deadline: Option<u64>) -> bool {
        let seg = &self.queue.core().seg;
        let done = || tasks::unfinished(seg) == 0;
        loop {
            if done() && self.confirm_done(deadline) {
                return true;
            }
            let now = sys::mono_now();
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            let until = deadline.map_or(now + JOIN_SLICE_NS, |d| d.min(now + JOIN_SLICE_NS));
            self.tasks_event().sleep(Some(until), done);
            if !done() {
                // Dead processes' items count once their slots are retired.
                procs::reap(seg, deadline);
            }
        }
    }

    /// A zero read without locks can be one low while a reader is between taking an item
    /// out of the ring and counting its `get`: read again under the read lock, when no
    /// reader is. (A reader that holds the lock for longer, stopped, is waited for.)
    fn confirm_done(&self, deadline: Option<u64>) -> bool {
        let core = self.queue.core();
        let ch = Channel::new(&core.seg, core.opts.max_item);
        let limit = sys::mono_now() + JOIN_SLICE_NS;
        match ch.lock_read(Some(deadline.map_or(limit, |d| d.min(limit)))) {
            Ok(_guard) => tasks::unfinished(&core.seg) == 0,
            Err(_) => false,
        }
    }
}
