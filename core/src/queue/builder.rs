//! Options for a new queue or for opening an existing one, and the ways to get a handle:
//! `create`, `open` (a named queue) and `open_handoff` (an anonymous one).

use super::core::{Core, DEFAULT_FLUSH_TIMEOUT, Opts};
use super::{Handle, Queue};
use crate::error::Error;
use crate::layout;
use crate::segment::{self, CreateParams};
use crate::sys;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Default ring size of the shared channel.
pub const DEFAULT_CAPACITY_BYTES: usize = 1 << 20;
/// Default largest item (encoded bytes).
pub const DEFAULT_MAX_ITEM: usize = 64 << 20;
/// Default number of processes that can be attached at once.
pub const DEFAULT_MAX_PROCESSES: usize = 64;
/// Largest `max_item_size` accepted from a builder or a segment.
const MAX_ITEM_LIMIT: usize = 1 << 40;
/// Times `open` (and `open_or_create`) looks a name up again when the queue went away
/// under it.
const RETRIES: u32 = 100;
/// Environment variable: `off` (or `0`) turns the per-operation counters off by default.
pub const STATS_ENV: &str = "MPQUEUE_STATS";

/// Options for a new queue, or for opening a named one. See [`Queue::builder`].
#[derive(Debug, Clone)]
pub struct Builder<T> {
    name: Option<String>,
    label: Option<String>,
    maxsize: usize,
    capacity: usize,
    max_item: usize,
    /// `max_item_size` as set by the caller (an opener's own limit).
    max_item_set: Option<usize>,
    max_processes: usize,
    mode: u32,
    dir: Option<PathBuf>,
    stats: Option<bool>,
    flush_timeout: Option<Duration>,
    open_existing: bool,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Builder<T> {
    pub(super) fn new() -> Self {
        Builder {
            name: None,
            label: None,
            maxsize: 0,
            capacity: DEFAULT_CAPACITY_BYTES,
            max_item: DEFAULT_MAX_ITEM,
            max_item_set: None,
            max_processes: DEFAULT_MAX_PROCESSES,
            mode: 0o600,
            dir: None,
            stats: None,
            flush_timeout: Some(DEFAULT_FLUSH_TIMEOUT),
            open_existing: false,
            _items: PhantomData,
        }
    }

    /// Makes a named queue that unrelated processes can [`Queue::open`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().name("shared-jobs").create()?;
    /// assert_eq!(q.name(), "shared-jobs");
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A label shown by the observers for an anonymous queue (default: a generated id).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().label("resize-stage").create()?;
    /// assert_eq!(q.name(), "resize-stage");
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Capacity in items; 0 (the default) means unbounded.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().maxsize(1).create()?;
    /// q.put(1)?;
    /// assert!(q.put_nowait(2).unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// Bytes of the shared ring (rounded up to a power of two, at least 4 KiB; default
    /// 1 MiB). Larger items stream through it.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<Vec<u8>>::builder().capacity_bytes(4096).create()?;
    /// q.put(vec![7; 100_000])?; // streams through the 4 KiB ring
    /// assert_eq!(q.get()?.len(), 100_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Largest encoded item accepted (default 64 MiB).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<Vec<u8>>::builder().max_item_size(16).create()?;
    /// assert!(matches!(q.put(vec![0; 100]), Err(mpqueue::PutError::TooLarge { .. })));
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item = bytes;
        self.max_item_set = Some(bytes);
        self
    }

    /// How many processes can be attached at once (default 64).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().name("few").max_processes(1).create()?;
    /// assert!(matches!(
    ///     mpqueue::Queue::<u8>::open("few"),
    ///     Err(mpqueue::Error::TooManyProcesses { .. })
    /// ));
    /// # drop(q);
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn max_processes(mut self, n: usize) -> Self {
        self.max_processes = n;
        self
    }

    /// Gives the owner's group read/write access to the queue's files (mode 0660 instead of
    /// 0600), and creates the directory 0750 (not 0700) if this queue is the first in it.
    ///
    /// Without it, the directory and every segment must belong to this user (the effective
    /// uid) and be writable by no one else, checked on the opened descriptors; anything else
    /// is refused with [`Error::Untrusted`]. With it, a directory or segment owned by another
    /// user is trusted when its group is one of this user's, but never one that others
    /// (outside the group) may write.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::os::unix::fs::PermissionsExt;
    /// let _q = mpqueue::Queue::<u8>::builder().name("team").group_access(true).create()?;
    /// let mode = std::fs::metadata(dir.path().join("q.team.stats"))?.permissions().mode();
    /// assert_eq!(mode & 0o777, 0o660);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn group_access(mut self, yes: bool) -> Self {
        self.mode = if yes { 0o660 } else { 0o600 };
        self
    }

    /// The segment directory (default `$MPQUEUE_DIR`, else `/dev/shm/mpqueue-UID`).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let elsewhere = tempfile::tempdir()?;
    /// let _q = mpqueue::Queue::<u8>::builder().name("there").dir(elsewhere.path()).create()?;
    /// assert!(elsewhere.path().join("q.there.stats").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Turns this process's per-operation counters on or off (default on, or
    /// `MPQUEUE_STATS=off`). Sizes, liveness and capacity accounting are always kept.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::builder().label("quiet").stats(false).create()?;
    /// q.put(1)?;
    /// let s = mpqueue::observe::list()?[0].snapshot()?;
    /// assert_eq!(s.puts, 1); // sizes are always counted
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(mut self, on: bool) -> Self {
        self.stats = Some(on);
        self
    }

    /// How long closing (or exiting) waits for a reader to make room before it drops what
    /// is still buffered; `None` waits for ever, like Python. Default 10 s.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use std::time::Duration;
    /// let q = mpqueue::Queue::<u8>::builder()
    ///     .flush_timeout(Some(Duration::from_secs(2)))
    ///     .create()?;
    /// q.put(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// With a name: open the queue if it exists instead of failing with `AlreadyExists`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let a = mpqueue::Queue::<u8>::builder().name("once").open_or_create(true).create()?;
    /// let b = mpqueue::Queue::<u8>::builder().name("once").open_or_create(true).create()?;
    /// a.put(1)?;
    /// assert_eq!(b.get()?, 1); // the same queue
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(mut self, yes: bool) -> Self {
        self.open_existing = yes;
        self
    }

    fn opts(&self, maxsize: u64, max_item: u64) -> Opts {
        let stats = self.stats.unwrap_or_else(|| {
            !matches!(
                std::env::var(STATS_ENV).as_deref(),
                Ok("off" | "0" | "false")
            )
        });
        Opts {
            maxsize,
            max_item,
            stats,
            flush_timeout: self.flush_timeout,
        }
    }

    /// `create` for a [`SimpleQueue`](super::SimpleQueue): unbounded, so a `maxsize` is refused.
    pub(super) fn create_simple(self) -> Result<Queue<T>, Error> {
        if self.maxsize != 0 {
            return Err(Error::InvalidOption {
                option: "maxsize",
                detail: "a SimpleQueue is unbounded".into(),
            });
        }
        self.create()
    }

    /// Creates the queue (or opens it, with [`open_or_create`](Self::open_or_create)).
    ///
    /// # Errors
    /// [`Error::InvalidOption`], [`Error::InvalidName`], [`Error::AlreadyExists`],
    /// [`Error::PermissionDenied`], [`Error::Io`] (e.g. `/dev/shm` full).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<String>::builder().name("made").maxsize(10).create()?;
    /// assert!(matches!(
    ///     mpqueue::Queue::<String>::builder().name("made").create(),
    ///     Err(mpqueue::Error::AlreadyExists { .. })
    /// ));
    /// # drop(q);
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn create(self) -> Result<Queue<T>, Error> {
        let capacity = self
            .capacity
            .max(4096)
            .checked_next_power_of_two()
            .filter(|&c| c <= 1 << 30)
            .ok_or_else(|| Error::InvalidOption {
                option: "capacity_bytes",
                detail: "at most 1 GiB".into(),
            })?;
        if self.max_item == 0 || self.max_item > MAX_ITEM_LIMIT {
            return Err(Error::InvalidOption {
                option: "max_item_size",
                detail: "1 byte to 1 TiB".into(),
            });
        }
        if self.max_processes == 0 || self.max_processes > 4096 {
            return Err(Error::InvalidOption {
                option: "max_processes",
                detail: "1 to 4096".into(),
            });
        }
        if self.maxsize > i64::MAX as usize {
            return Err(Error::InvalidOption {
                option: "maxsize",
                detail: "at most i64::MAX".into(),
            });
        }
        if let Some(n) = &self.name {
            segment::validate_name(n)?;
        }
        let label = match &self.label {
            Some(l) if l.len() > layout::NAME_MAX => {
                return Err(Error::InvalidOption {
                    option: "label",
                    detail: "at most 128 bytes".into(),
                });
            }
            Some(l) => l.clone(),
            None => format!("anon-{}-{}", sys::pid(), next_anon_id()),
        };
        let params = CreateParams {
            name: self.name.clone(),
            label,
            maxsize: self.maxsize as u64,
            ring_capacity: capacity,
            max_item: self.max_item as u64,
            slots: self.max_processes,
            mode: self.mode,
            dir: self.dir.clone().unwrap_or_else(segment::queue_dir),
        };
        let mut tries = 0;
        let seg = loop {
            match segment::create(&params) {
                Err(Error::AlreadyExists { name }) if self.open_existing => {
                    match self.open_ref(&name) {
                        // It went away between the two: create it after all.
                        Err(Error::NotFound { .. } | Error::Removed { .. }) if tries < RETRIES => {
                            tries += 1;
                        }
                        other => return other,
                    }
                }
                other => break other?,
            }
        };
        let opts = self.opts(params.maxsize, params.max_item);
        let core = Core::new(seg, opts, Some(segment::CREATOR_SLOT))?;
        Ok(Queue {
            handle: Arc::new(Handle { core }),
            _items: PhantomData,
        })
    }

    /// Attaches to the existing named queue `name` (its size limits come from the segment).
    ///
    /// # Errors
    /// As for [`Queue::open`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let _made = mpqueue::Queue::<u8>::builder().name("opened").maxsize(3).create()?;
    /// let q = mpqueue::Queue::<u8>::builder().open("opened")?;
    /// assert_eq!(q.maxsize(), 3); // limits come from the queue
    /// # Ok::<(), mpqueue::Error>(())
    /// ```
    pub fn open(self, name: &str) -> Result<Queue<T>, Error> {
        self.open_ref(name)
    }

    fn open_ref(&self, name: &str) -> Result<Queue<T>, Error> {
        let mut tries = 0;
        loop {
            let seg = segment::open(&self.queue_dir(), name, self.group())?;
            match self.attach(seg) {
                // The last process detached as we attached: look the name up again.
                Err(Error::Removed { .. }) if tries < RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Attaches to an anonymous queue that this process did not inherit through `fork`,
    /// from its [`Handoff`](super::Handoff) in a process that has it: the path of its stats
    /// file (whose directory is the queue's, whatever this builder's) and a copy of its data
    /// segment's file descriptor, passed over (`SCM_RIGHTS`, or inherited across `exec`).
    /// Its size limits come from the segment. This is how Python's `spawn` and
    /// `forkserver` children get a queue.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a path that is not an anonymous queue's stats file;
    /// [`Error::NotFound`] or [`Error::Removed`] if the queue is gone (every process left
    /// it) or `data` is not its data segment; [`Error::Untrusted`] or [`Error::Corrupt`] for
    /// a directory or segment that fails validation.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::Queue;
    /// let q = Queue::<u8>::new(0)?;
    /// let h = q.handoff().expect("an anonymous queue");
    /// // What another process would receive: the path and its own descriptor.
    /// let (path, fd) = (h.stats_path.to_owned(), h.data.try_clone_to_owned()?);
    /// let other = Queue::<u8>::builder().open_handoff(&path, fd)?;
    /// q.put(7)?;
    /// assert_eq!(other.get()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_handoff(self, stats_path: &Path, data: OwnedFd) -> Result<Queue<T>, Error> {
        let bad = || Error::InvalidName {
            name: stats_path.display().to_string(),
            reason: "not the path of an anonymous queue's stats file",
        };
        let file = stats_path
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(bad)?;
        let dir = stats_path
            .parent()
            .filter(|d| d.is_absolute())
            .ok_or_else(bad)?;
        let seg = segment::open_handoff(dir, file, data.into(), self.group())?;
        self.attach(seg)
    }

    fn queue_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(segment::queue_dir)
    }

    fn group(&self) -> bool {
        self.mode & 0o070 != 0
    }

    /// A handle on the opened segments `seg` (this process attaches to a stats slot).
    fn attach(&self, seg: segment::Segments) -> Result<Queue<T>, Error> {
        let h = seg.stats();
        // The item limit is read from shared memory: bounded by this process's own.
        let max_item = h.max_item.load(Relaxed);
        if max_item == 0 || max_item > MAX_ITEM_LIMIT as u64 {
            return Err(Error::Corrupt {
                path: seg.paths.last().cloned().unwrap_or_default(),
                reason: format!("item limit {max_item} is out of range"),
            });
        }
        let max_item = self
            .max_item_set
            .map_or(max_item, |m| max_item.min(m as u64));
        let opts = self.opts(h.maxsize.load(Relaxed), max_item);
        let core = Core::new(seg, opts, None)?;
        Ok(Queue {
            handle: Arc::new(Handle { core }),
            _items: PhantomData,
        })
    }
}

fn next_anon_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}
