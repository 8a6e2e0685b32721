//! Read-only observation of every queue on the machine, from its stats segment alone: the
//! API behind `mpqueue-top` and `mpqueue-exporter`.
//!
//! Observers never open a queue's data segment, never map a segment and never take a
//! queue's locks. Every stats file is treated as hostile: only a regular file is opened
//! (never through a symlink, never a FIFO or device), its size must be that of a stats
//! segment with 1 to 4096 process slots, and it is read with `pread` into buffers of the
//! observer's own, so a file that another process truncates meanwhile is an error for that
//! entry, never a `SIGBUS`. The copies are parsed with bounds-checked reads; a bad file is an
//! error for that entry only. A snapshot retries for at most a few milliseconds while
//! retirements move counters between slots (see [`QueueRef::snapshot`]).
//!
//! Whether an attached process lives is [`Liveness`]: known alive, known dead, or unknown
//! (recorded in another pid namespace, or `/proc` unreadable). Only processes known dead
//! count as dead, and only a queue whose every process is known dead is stale.
//!
//! # Examples
//! ```
//! # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
//! let q = mpqueue::Queue::<u32>::builder().name("observed").maxsize(8).create()?;
//! q.put(1)?;
//! q.put(2)?;
//! q.get()?;
//! let queues = mpqueue::observe::list()?;
//! let s = queues.iter().find(|q| q.name() == "observed").unwrap().snapshot()?;
//! assert_eq!((s.puts, s.gets, s.size, s.maxsize), (2, 1, 1, 8));
//! assert!(s.alive);
//! assert_eq!(s.processes[0].liveness, mpqueue::observe::Liveness::Alive);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ages;
mod duration;
mod file;
mod health;
mod parse;
mod snapshot;

pub use ages::AgeTracker;
pub use duration::{parse_duration, parse_stall_after};
use file::{GRACE, StatsFile};
pub use health::{Health, HealthRules, HealthWindow};

pub use parse::{parse, parse_bytes};
pub use snapshot::{HistogramSnapshot, ProcessSnapshot, Rates, Role, Snapshot};

use crate::error::Error;
use crate::segment::{self};
use crate::sys;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::sys::Liveness;

/// A stats file found in the directory; [`QueueRef::snapshot`] reads it.
#[derive(Debug, Clone)]
pub struct QueueRef {
    path: PathBuf,
    id: String,
}

impl QueueRef {
    /// The stats file.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let _q = mpqueue::Queue::<u8>::builder().name("pathed").create()?;
    /// let r = &mpqueue::observe::list()?[0];
    /// assert!(r.path().ends_with("q.pathed.stats"));
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The queue's id: its stats file's name without `.stats` (`q.NAME` for a named queue,
    /// `a.PID.START.N` for an anonymous one); unique among the queues of a directory.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let _q = mpqueue::Queue::<u8>::builder().name("ided").create()?;
    /// assert_eq!(mpqueue::observe::list()?[0].id(), "q.ided");
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The queue's name for a named queue, else its file id (the snapshot has the label).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let _q = mpqueue::Queue::<u8>::builder().name("named-ref").create()?;
    /// assert_eq!(mpqueue::observe::list()?[0].name(), "named-ref");
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.id.strip_prefix("q.").unwrap_or(&self.id)
    }

    /// Whether the file is a named queue's.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let _q = mpqueue::Queue::<u8>::new(0)?; // anonymous
    /// assert!(!mpqueue::observe::list()?[0].is_named());
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn is_named(&self) -> bool {
        self.id.starts_with("q.")
    }

    /// Reads the queue's counters now, from copies of its stats file.
    ///
    /// While another process retires a slot (folds a detached or dead process's counters
    /// into the totals) the copies are taken again, for at most 5 ms; a sequence that never
    /// settles (a retirer stopped or killed halfway, or a hostile writer) gives the last copy
    /// as it is, in which the retiring slot's counts may be missing or counted twice.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (not a regular file, a symlink, a size or contents no queue has, or
    /// the file shrank while it was read), [`Error::Incompatible`],
    /// [`Error::PermissionDenied`], [`Error::Io`], or [`Error::NotFound`] if the queue went
    /// away.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().label("snapped").create()?;
    /// q.put(1)?;
    /// let s = mpqueue::observe::list()?[0].snapshot()?;
    /// assert_eq!((s.name.as_str(), s.puts, s.size), ("snapped", 1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        StatsFile::open(&self.path, &self.id)?.snapshot(&self.id)
    }

    /// Removes the queue's files if it is stale, and returns the files removed.
    ///
    /// A queue is stale when every process attached to it is known to be dead
    /// ([`Liveness::Dead`]): a process of another pid namespace, or one whose state cannot
    /// be read, keeps it. A queue with no attached process is stale once it is more than a
    /// minute old (younger, its creator may be about to attach); a stats file that never got
    /// initialised likewise. If this process cannot read its own `/proc` (no descriptor
    /// left, a `/proc` of another pid namespace), nothing is removed. A file that cannot be
    /// read or parsed is left alone (it may be someone else's).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().name("kept").create()?;
    /// let r = &mpqueue::observe::list()?[0];
    /// assert!(r.remove_if_stale().is_empty(), "this process is alive");
    /// # drop(q);
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn remove_if_stale(&self) -> Vec<PathBuf> {
        if !self.is_stale() {
            return Vec::new();
        }
        let mut files = vec![self.path.clone()];
        if let (Some(name), Some(dir)) = (self.id.strip_prefix("q."), self.path.parent()) {
            files.insert(0, segment::named_paths(dir, name).0);
        }
        files
            .into_iter()
            .filter(|f| std::fs::remove_file(f).is_ok())
            .collect()
    }

    fn is_stale(&self) -> bool {
        // Without a readable /proc of this pid namespace nothing can be known dead.
        if sys::pid_namespace() == 0 {
            return false;
        }
        let Ok(file) = StatsFile::open(&self.path, &self.id) else {
            return false;
        };
        match file.snapshot(&self.id) {
            Ok(s) if s.processes.is_empty() => {
                let created = Duration::from_nanos(s.created_unix_ns);
                let age = std::time::SystemTime::UNIX_EPOCH
                    .checked_add(created)
                    .and_then(|t| t.elapsed().ok());
                age.is_some_and(|a| a > GRACE)
            }
            Ok(s) => s.processes.iter().all(|p| p.liveness == Liveness::Dead),
            Err(Error::Corrupt { .. }) => file.unpublished_and_old(),
            Err(_) => false,
        }
    }
}

/// Every queue visible in `$MPQUEUE_DIR` (or the default directory); an empty list if the
/// directory does not exist.
///
/// # Errors
/// [`Error::PermissionDenied`] or [`Error::Io`] if the directory cannot be read.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let _a = mpqueue::Queue::<u8>::builder().name("first").create()?;
/// let _b = mpqueue::Queue::<u8>::builder().name("second").create()?;
/// let names: Vec<String> = mpqueue::observe::list()?.iter().map(|r| r.name().to_string()).collect();
/// assert_eq!(names, ["first", "second"]);
/// # Ok::<(), mpqueue::Error>(())
/// ```
pub fn list() -> Result<Vec<QueueRef>, Error> {
    list_in(&segment::queue_dir())
}

/// Every queue visible in `dir`, sorted by file name.
///
/// # Errors
/// As for [`list`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let _q = mpqueue::Queue::<u8>::builder().name("here").create()?;
/// assert_eq!(mpqueue::observe::list_in(dir.path())?.len(), 1);
/// assert!(mpqueue::observe::list_in(&dir.path().join("absent"))?.is_empty());
/// # Ok::<(), mpqueue::Error>(())
/// ```
pub fn list_in(dir: &Path) -> Result<Vec<QueueRef>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::PermissionDenied { path: dir.into() });
        }
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut out: Vec<QueueRef> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let id = file.strip_suffix(".stats")?.to_string();
            (id.starts_with("q.") || id.starts_with("a.")).then(|| QueueRef { path: e.path(), id })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Removes the files of stale queues in `$MPQUEUE_DIR` (or the default directory): queues
/// every attached process of which is known to be dead. Returns the files removed.
///
/// # Errors
/// As for [`list`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let _live = mpqueue::Queue::<u8>::builder().name("live").create()?;
/// assert!(mpqueue::observe::cleanup()?.is_empty(), "a live queue is never removed");
/// # Ok::<(), mpqueue::Error>(())
/// ```
pub fn cleanup() -> Result<Vec<PathBuf>, Error> {
    cleanup_in(&segment::queue_dir())
}

/// Removes the files of stale queues in `dir` (see [`QueueRef::remove_if_stale`]).
///
/// # Errors
/// As for [`list`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let _live = mpqueue::Queue::<u8>::builder().name("live-in").create()?;
/// assert!(mpqueue::observe::cleanup_in(dir.path())?.is_empty());
/// # Ok::<(), mpqueue::Error>(())
/// ```
pub fn cleanup_in(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    for q in list_in(dir)? {
        removed.extend(q.remove_if_stale());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::HIST_BUCKETS;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn quantile_picks_the_bucket_upper_bound() {
        let mut h = HistogramSnapshot::default();
        assert_eq!(h.quantile(0.5), None);
        h.buckets[3] = 9;
        h.buckets[10] = 1;
        h.count = 10;
        assert_eq!(h.quantile(0.5), Some(Duration::from_nanos(1 << 13)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_nanos(1 << 20)));
        h.buckets[HIST_BUCKETS - 1] = 100;
        assert_eq!(h.quantile(1.0), Some(Duration::from_nanos(1 << 36)));
    }

    #[test]
    fn garbage_never_panics() {
        let path = Path::new("x");
        for len in [0usize, 1, 10, 300, 400] {
            let words: Vec<AtomicU64> = (0..len)
                .map(|i| AtomicU64::new((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
                .collect();
            assert!(parse(&words, path, "x").is_err());
        }
    }
}
