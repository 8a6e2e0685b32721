//! # mpqueue
//!
//! A multi-process FIFO queue with the behaviour of Python's `multiprocessing.Queue` — the
//! same operations, blocking, timeouts, `Full`/`Empty`, `close`/`join_thread`, and a
//! per-process feeder thread — over a shared-memory ring instead of a pipe, safe against
//! processes that die at any instant, and observable from outside: every queue keeps live
//! counters in a shared-memory stats segment that [`observe`] (and the `mpqueue-top` and
//! `mpqueue-exporter` tools) read without touching the queue. Linux only.
//!
//! ```
//! use mpqueue::{Queue, process};
//! use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?; unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
//! let jobs: Queue<(u32, String)> = Queue::new(100)?;
//! let results: Queue<u32> = Queue::new(0)?;
//! let worker = process::fork({
//!     let (jobs, results) = (jobs.clone(), results.clone());
//!     move || {
//!         while let Ok((id, text)) = jobs.get() {
//!             if text.is_empty() { break; }
//!             results.put(id * 10).unwrap();
//!         }
//!         0
//!     }
//! })?;
//! jobs.put((1, "one".into()))?;
//! jobs.put((2, "two".into()))?;
//! jobs.put((0, String::new()))?; // stop
//! assert_eq!(results.get_timeout(Duration::from_secs(10))?, 10);
//! assert_eq!(results.get_timeout(Duration::from_secs(10))?, 20);
//! assert_eq!(worker.join()?, 0);
//! # Ok(()) }
//! ```
//!
//! ## Differences from Python
//! - Items are serialised (serde + bincode) in `put`, so an item that cannot be encoded is
//!   returned to the caller with [`PutError::Encode`]; Python pickles in the feeder thread,
//!   prints the error and drops the item.
//! - [`Queue::empty`] is `qsize() == 0` (items in any feeder buffer count), not "the pipe
//!   has bytes", and keeps working after `close`.
//! - Timeouts cover the whole call on the monotonic clock; a `get` that started reading a
//!   large item from a writer that then died drops that item instead of hanging.
//! - A process killed while holding a lock, or in the middle of an item, does not wedge the
//!   others: the next process repairs the channel and counts what was lost.
//! - Exit flushing gives up after [`Builder::flush_timeout`] without progress (default
//!   10 s) instead of hanging for ever when nobody reads.

#![warn(missing_docs)]

mod bytes;
mod capacity;
mod channel;
mod codec;
mod dir;
mod error;
pub mod families;
mod header;
mod interrupt;
mod layout;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod observe;
pub mod process;
mod procs;
mod queue;
mod registry;
mod segment;
mod stats;
mod sync;
mod sys;
mod tasks;
mod timeline;

pub use bytes::Bytes;
pub use error::{BrokenKind, CorruptKind, Error, GetError, JoinError, PutError, TaskDoneError};
pub use interrupt::interruptible;
pub use process::{Child, ChildError};
pub use queue::{
    Builder, DEFAULT_CAPACITY_BYTES, DEFAULT_FLUSH_TIMEOUT, DEFAULT_MAX_ITEM,
    DEFAULT_MAX_PROCESSES, Handoff, Iter, JoinableQueue, Queue, STATS_ENV, SimpleQueue, TryIter,
    unlink,
};
pub use segment::{DIR_ENV, queue_dir};

/// The stats-segment layout constants, for tools that document or check it.
pub mod layout_info {
    pub use crate::layout::{
        HIST_BUCKETS, LAYOUT_MAJOR, LAYOUT_MINOR, SLOT_LEN, STATS_HEADER_LEN, bucket_upper_ns,
    };
}
