//! Error types: one per operation, shaped after Python's `Full`/`Empty` and crossbeam's
//! send errors (the item comes back to the caller whenever `put` fails).

use std::fmt;
use std::path::PathBuf;

/// Why a queue could not be created, opened or attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name is not usable as a queue name.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name (lossy UTF-8).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A builder option is out of range.
    #[error("invalid option {option}: {detail}")]
    InvalidOption {
        /// The builder method (`capacity_bytes`, `max_item_size`, ...).
        option: &'static str,
        /// The accepted range.
        detail: String,
    },
    /// `create` found a queue (or a crashed creator's leftovers) under this name.
    #[error("queue {name:?} already exists (remove leftovers with mpqueue::unlink)")]
    AlreadyExists {
        /// The queue name.
        name: String,
    },
    /// `open` found no queue under this name.
    #[error("no queue named {name:?}")]
    NotFound {
        /// The queue name.
        name: String,
    },
    /// The queue was removed while attaching to it.
    #[error("queue {name:?} was removed")]
    Removed {
        /// The queue name.
        name: String,
    },
    /// The segment belongs to someone else, or its mode forbids access.
    #[error("permission denied: {}", path.display())]
    PermissionDenied {
        /// The file that could not be opened.
        path: PathBuf,
    },
    /// The queue directory or a segment in it belongs to someone else, or others may write
    /// it: another user could have planted it to read or feed this user's queues.
    #[error(
        "refusing {}: owned by uid {owner}, mode {mode:03o}; {advice}",
        path.display()
    )]
    Untrusted {
        /// The directory or file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// What is wrong and what to do.
        advice: String,
    },
    /// The file is not an mpqueue segment, or its contents are inconsistent.
    #[error("corrupt or foreign segment {}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What failed validation.
        reason: String,
    },
    /// The segment was written by an incompatible layout version.
    #[error("segment {} has layout version {major}.{minor}; this build reads {supported}.x", path.display())]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// Its major version.
        major: u32,
        /// Its minor version.
        minor: u32,
        /// The major version this build reads for that kind of segment.
        supported: u32,
    },
    /// The queue's slot lock stayed taken until the deadline: its holder is stopped (or
    /// very slow). Nothing was changed.
    #[error("queue {name:?} is busy: another process holds its slot lock (stopped?)")]
    Busy {
        /// The queue name.
        name: String,
    },
    /// Every process slot of the queue is taken by live processes.
    #[error("queue {name:?} has no free process slot (raise the builder's max_processes)")]
    TooManyProcesses {
        /// The queue name.
        name: String,
    },
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Why `put` failed. Every variant gives the item back ([`PutError::into_inner`]).
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue holds `maxsize` items and the call could not wait (longer).
    Full(T),
    /// [`Queue::close`](crate::Queue::close) was called in this process.
    Closed(T),
    /// The check of an [`interruptible`](crate::interruptible) call said to stop waiting.
    Interrupted(T),
    /// The encoded item is larger than the queue's `max_item_size`.
    TooLarge {
        /// The item.
        item: T,
        /// Its encoded size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The item could not be serialised (nothing was enqueued).
    Encode {
        /// The item.
        item: T,
        /// The serialiser's message.
        reason: String,
    },
    /// The queue cannot be used (a lock is not recoverable, this process cannot attach).
    Broken {
        /// The item.
        item: T,
        /// What is broken.
        kind: BrokenKind,
        /// The details.
        detail: String,
    },
}

impl<T> PutError<T> {
    /// The item that was not enqueued.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::Closed(t) | PutError::Interrupted(t) => t,
            PutError::TooLarge { item, .. }
            | PutError::Encode { item, .. }
            | PutError::Broken { item, .. } => item,
        }
    }

    /// The same error with the item turned into `f(item)`.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::PutError;
    /// let e: PutError<Vec<u8>> = PutError::Full(7u8).map(|i| vec![i]);
    /// assert_eq!(e, PutError::Full(vec![7]));
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> PutError<U> {
        match self {
            PutError::Full(t) => PutError::Full(f(t)),
            PutError::Closed(t) => PutError::Closed(f(t)),
            PutError::Interrupted(t) => PutError::Interrupted(f(t)),
            PutError::TooLarge { item, size, max } => PutError::TooLarge {
                item: f(item),
                size,
                max,
            },
            PutError::Encode { item, reason } => PutError::Encode {
                item: f(item),
                reason,
            },
            PutError::Broken { item, kind, detail } => PutError::Broken {
                item: f(item),
                kind,
                detail,
            },
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// Whether the queue was closed in this process.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::Interrupted(_) => f.write_str("Interrupted(..)"),
            PutError::TooLarge { size, max, .. } => f
                .debug_struct("TooLarge")
                .field("size", size)
                .field("max", max)
                .finish_non_exhaustive(),
            PutError::Encode { reason, .. } => f
                .debug_struct("Encode")
                .field("reason", reason)
                .finish_non_exhaustive(),
            PutError::Broken { kind, detail, .. } => f
                .debug_struct("Broken")
                .field("kind", kind)
                .field("detail", detail)
                .finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("queue is full"),
            PutError::Closed(_) => f.write_str("queue is closed"),
            PutError::Interrupted(_) => f.write_str("interrupted while waiting for room"),
            PutError::TooLarge { size, max, .. } => {
                write!(
                    f,
                    "item of {size} bytes exceeds the queue's limit of {max} bytes"
                )
            }
            PutError::Encode { reason, .. } => write!(f, "cannot encode item: {reason}"),
            PutError::Broken { kind, detail, .. } => {
                write!(f, "queue is broken ({kind}): {detail}")
            }
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Errors compare equal when they are the same variant with equal items and details.
impl<T: PartialEq> PartialEq for PutError<T> {
    fn eq(&self, other: &Self) -> bool {
        use PutError::*;
        match (self, other) {
            (Full(a), Full(b)) | (Closed(a), Closed(b)) | (Interrupted(a), Interrupted(b)) => {
                a == b
            }
            (
                TooLarge { item, size, max },
                TooLarge {
                    item: i2,
                    size: s2,
                    max: m2,
                },
            ) => item == i2 && size == s2 && max == m2,
            (
                Encode { item, reason },
                Encode {
                    item: i2,
                    reason: r2,
                },
            ) => item == i2 && reason == r2,
            (
                Broken { item, kind, detail },
                Broken {
                    item: i2,
                    kind: k2,
                    detail: d2,
                },
            ) => item == i2 && kind == k2 && detail == d2,
            _ => false,
        }
    }
}

impl<T: Eq> Eq for PutError<T> {}

/// Why `get` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// No item arrived before the deadline (or at once, for `get_nowait`).
    #[error("queue is empty")]
    Empty,
    /// [`Queue::close`](crate::Queue::close) was called in this process.
    #[error("queue is closed")]
    Closed,
    /// The check of an [`interruptible`](crate::interruptible) call said to stop waiting.
    #[error("interrupted while waiting for an item")]
    Interrupted,
    /// An item was taken out but could not be decoded as `T` (it is gone; the queue goes on).
    #[error("cannot decode item of {len} bytes: {reason}")]
    Decode {
        /// The encoded length.
        len: usize,
        /// The deserialiser's message.
        reason: String,
    },
    /// The ring held bytes that are not a valid record (someone wrote into the segment); the
    /// unreadable bytes were skipped and counted as discarded.
    #[error("corrupt data in queue ({kind}): {detail}")]
    Corrupt {
        /// What was wrong.
        kind: CorruptKind,
        /// The details.
        detail: String,
    },
    /// The queue cannot be used (a lock is not recoverable, this process cannot attach).
    #[error("queue is broken ({kind}): {detail}")]
    Broken {
        /// What is broken.
        kind: BrokenKind,
        /// The details.
        detail: String,
    },
}

/// What a read found wrong in the ring ([`GetError::Corrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptKind {
    /// The ring positions are impossible.
    #[error("ring positions")]
    Positions,
    /// A record runs past the published data.
    #[error("record overrun")]
    Overrun,
    /// A record of a kind that does not exist.
    #[error("unknown record kind")]
    UnknownKind,
    /// A length out of range: an item over this process's limit, a streamed item whose
    /// announced length is impossible, or one longer or shorter than announced.
    #[error("length")]
    Length,
    /// A new item began inside an unfinished one.
    #[error("interleaved items")]
    Interleaved,
    /// No memory for an item of the announced length.
    #[error("no memory")]
    NoMemory,
}

/// What makes a queue unusable ([`GetError::Broken`], [`PutError::Broken`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokenKind {
    /// A lock of the channel cannot be taken (`ENOTRECOVERABLE`, or a scribbled mutex).
    #[error("lock")]
    Lock,
    /// The ring positions the writer sees are impossible.
    #[error("ring positions")]
    Positions,
    /// This process could not attach to the queue (see the detail).
    #[error("attach")]
    Attach,
}

impl GetError {
    /// Whether the queue was empty (or stayed empty until the deadline).
    ///
    /// # Examples
    /// ```
    /// assert!(mpqueue::GetError::Empty.is_empty());
    /// assert!(!mpqueue::GetError::Closed.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }

    /// Whether the queue was closed in this process.
    ///
    /// # Examples
    /// ```
    /// assert!(mpqueue::GetError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }
}

/// Why [`Queue::join_thread`](crate::Queue::join_thread) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// `join_thread` must follow `close` (Python asserts the same).
    #[error("queue is not closed: call close() before join_thread()")]
    NotClosed,
    /// The feeder gave up: nobody read for the flush timeout; this many items were dropped.
    #[error("flush stalled: {dropped} buffered items were dropped because nobody read")]
    Stalled {
        /// Items dropped.
        dropped: u64,
    },
}

/// Why [`JoinableQueue::task_done`](crate::JoinableQueue::task_done) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskDoneError {
    /// This process has marked as many items done as it got (Python raises `ValueError`).
    #[error("task_done() called more times than this process got items")]
    TooMany,
    /// This process could not attach to the queue.
    #[error("cannot use the queue: {detail}")]
    Broken {
        /// The details.
        detail: String,
    },
}
