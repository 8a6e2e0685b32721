//! Handing an anonymous queue to a process that was not forked from one that has it: the
//! name of its stats file and its data segment's file descriptor.

use super::{Builder, JoinableQueue, Queue, SimpleQueue};
use crate::error::Error;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// What another process needs to attach to an anonymous queue: pass `stats_path` and a
/// copy of `data` (over a Unix socket with `SCM_RIGHTS`, or inherited across `exec`), then
/// call
/// [`Builder::open_handoff`](super::Builder::open_handoff) there. The queue must still be
/// in use (some process attached) when the other process opens it: the last process to
/// leave removes it.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let q = mpqueue::Queue::<u8>::new(0)?;
/// let h = q.handoff().expect("an anonymous queue");
/// let file = h.stats_path.file_name().unwrap().to_str().unwrap();
/// assert!(file.starts_with("a.") && file.ends_with(".stats"));
/// assert!(mpqueue::Queue::<u8>::builder().name("by-name").create()?.handoff().is_none());
/// # Ok::<(), mpqueue::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Handoff<'a> {
    /// The queue's stats file, `a.PID.START.N.stats` in the queue directory.
    pub stats_path: &'a Path,
    /// The queue's data segment (a memory file with no name).
    pub data: BorrowedFd<'a>,
}

impl<T> Queue<T> {
    /// The handoff of an anonymous queue, for a process that cannot inherit it through
    /// `fork` (see [`Handoff`]); `None` for a named queue, which such a process opens by
    /// name.
    ///
    /// # Examples
    /// See [`Handoff`] and [`Builder::open_handoff`](super::Builder::open_handoff).
    pub fn handoff(&self) -> Option<Handoff<'_>> {
        let data = self.core().seg.data_file.as_ref()?;
        Some(Handoff {
            stats_path: self.stats_path(),
            data: data.as_fd(),
        })
    }
}

impl<T> JoinableQueue<T> {
    /// Attaches to an anonymous joinable queue through its [`Handoff`], with the options of
    /// `builder` that apply to an existing queue (see
    /// [`Builder::open_handoff`](super::Builder::open_handoff)).
    ///
    /// # Errors
    /// As [`Builder::open_handoff`](super::Builder::open_handoff).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::{JoinableQueue, Queue};
    /// let q = JoinableQueue::<u8>::new(0)?;
    /// let h = q.handoff().unwrap();
    /// let other =
    ///     JoinableQueue::open_handoff(Queue::<u8>::builder(), h.stats_path, h.data.try_clone_to_owned()?)?;
    /// q.put(1)?;
    /// other.get()?;
    /// other.task_done()?;
    /// q.join();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_handoff(
        builder: Builder<T>,
        stats_path: &Path,
        data: OwnedFd,
    ) -> Result<Self, Error> {
        builder.open_handoff(stats_path, data).map(Self::joinable)
    }

    /// Attaches to the named joinable queue `name` with the options of `builder` that
    /// apply to an existing queue (see [`Builder::open`]).
    ///
    /// # Errors
    /// As [`Queue::open`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::{JoinableQueue, Queue};
    /// let q = JoinableQueue::<u8>::from_builder(Queue::builder().name("joinable-with"))?;
    /// let other = JoinableQueue::<u8>::open_with(Queue::builder().flush_timeout(None), "joinable-with")?;
    /// assert_eq!(other.maxsize(), q.maxsize());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(builder: Builder<T>, name: &str) -> Result<Self, Error> {
        builder.open(name).map(Self::joinable)
    }
}

impl<T> SimpleQueue<T> {
    /// The handoff of an anonymous simple queue (see [`Queue::handoff`]).
    ///
    /// # Examples
    /// See [`open_handoff`](Self::open_handoff).
    pub fn handoff(&self) -> Option<Handoff<'_>> {
        self.queue.handoff()
    }

    /// Attaches to an anonymous simple queue through its [`Handoff`] (see
    /// [`Builder::open_handoff`](super::Builder::open_handoff)).
    ///
    /// # Errors
    /// As [`Builder::open_handoff`](super::Builder::open_handoff).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::SimpleQueue::<u8>::new()?;
    /// let h = q.handoff().unwrap();
    /// let other = mpqueue::SimpleQueue::<u8>::open_handoff(h.stats_path, h.data.try_clone_to_owned()?)?;
    /// q.put(2)?;
    /// assert_eq!(other.get()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_handoff(stats_path: &Path, data: OwnedFd) -> Result<Self, Error> {
        SimpleQueue::unbounded(Queue::builder().open_handoff(stats_path, data)?)
    }
}
