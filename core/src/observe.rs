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

use crate::error::Error;
use crate::layout::MAX_SLOTS;
use crate::layout::{
    HIST_BUCKETS, Histogram, LAYOUT_MAJOR, NAME_MAX, ProcSlot, SLOT_LEN, STATS_HEADER_LEN,
    STATS_MAGIC, StatsHeader, bucket_upper_ns, role, slot_state, stats_len,
};
use crate::segment::{self, FLAG_NAMED};
use crate::sync::RETRY_NS;
use crate::sys;
use std::fs::File;
use std::mem::offset_of;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Acquire;
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
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The queue's name for a named queue, else its file id (the snapshot has the label).
    pub fn name(&self) -> &str {
        self.id.strip_prefix("q.").unwrap_or(&self.id)
    }

    /// Whether the file is a named queue's.
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
pub fn list() -> Result<Vec<QueueRef>, Error> {
    list_in(&segment::queue_dir())
}

/// Every queue visible in `dir`, sorted by file name.
///
/// # Errors
/// As for [`list`].
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

/// A blocked-time histogram: non-cumulative bucket counts, see [`HistogramSnapshot::bounds`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations.
    pub count: u64,
    /// Total blocked time in nanoseconds.
    pub sum_ns: u64,
    /// Per-bucket counts.
    pub buckets: [u64; HIST_BUCKETS],
}

impl HistogramSnapshot {
    /// Upper bound of each bucket in nanoseconds (powers of two from 1.024 µs; the last is
    /// `u64::MAX`, i.e. +Inf).
    pub fn bounds() -> [u64; HIST_BUCKETS] {
        std::array::from_fn(bucket_upper_ns)
    }

    /// The `q`-quantile (0..=1) as the upper bound of the bucket it falls in; `None` without
    /// observations. For the overflow bucket it returns the largest finite bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.buckets.iter().fold(0, |a, b| a.saturating_add(*b));
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                let i = i.min(HIST_BUCKETS - 2);
                return Some(Duration::from_nanos(bucket_upper_ns(i)));
            }
        }
        Some(Duration::from_nanos(bucket_upper_ns(HIST_BUCKETS - 2)))
    }

    fn add(&mut self, other: &HistogramSnapshot) {
        self.count = self.count.wrapping_add(other.count);
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.wrapping_add(b);
        }
    }
}

/// What a process does with the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Attached, has neither put nor got yet.
    Idle,
    /// Has put.
    Producer,
    /// Has got.
    Consumer,
    /// Has done both.
    Both,
}

impl Role {
    fn from_bits(bits: u64) -> Self {
        match (bits & role::PRODUCER != 0, bits & role::CONSUMER != 0) {
            (false, false) => Role::Idle,
            (true, false) => Role::Producer,
            (false, true) => Role::Consumer,
            (true, true) => Role::Both,
        }
    }

    /// `"producer"`, `"consumer"`, `"both"` or `"idle"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Idle => "idle",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Both => "both",
        }
    }
}

/// One attached process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSnapshot {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (with the pid, names the process uniquely).
    pub start_time: u64,
    /// Whether that process (same pid and start time) may still run: `false` only if it is
    /// known dead (`liveness == Liveness::Dead`).
    pub alive: bool,
    /// Whether that process runs: known alive, known dead, or unknown (it was recorded in
    /// another pid namespace, or its `/proc` entry could not be read).
    pub liveness: Liveness,
    /// What it has done.
    pub role: Role,
    /// Time since its last put/get; `None` if it never did either.
    pub heartbeat_age: Option<Duration>,
    /// Items it has accepted and not yet written into the channel (its feeder buffer).
    pub buffered_items: u64,
    /// Bytes of those.
    pub buffered_bytes: u64,
    /// Items it put.
    pub puts: u64,
    /// Items it got.
    pub gets: u64,
    /// `put` calls of it that found the queue full.
    pub full_events: u64,
    /// `get` calls of it that found the queue empty.
    pub empty_events: u64,
}

/// The state of one queue at one moment, read without touching the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Queue name (named) or label / generated id (anonymous). Untrusted text: escape it
    /// before showing it.
    pub name: String,
    /// The stats file's id (`q.NAME` or `a.PID.START.N`), unique in the directory.
    pub id: String,
    /// Whether other processes can open it by name.
    pub named: bool,
    /// Capacity in items; 0 = unbounded.
    pub maxsize: u64,
    /// Items put and not yet got (buffered ones included). Read while the queue runs, it
    /// never shows more than the queue held; it can come out low while items move.
    pub size: u64,
    /// Items put, by every process that ever attached.
    pub puts: u64,
    /// Items got.
    pub gets: u64,
    /// Encoded bytes put.
    pub bytes_put: u64,
    /// Encoded bytes got.
    pub bytes_got: u64,
    /// `put` calls that found the queue full.
    pub full_events: u64,
    /// `get` calls that found the queue empty.
    pub empty_events: u64,
    /// `put` calls that timed out.
    pub put_timeouts: u64,
    /// `get` calls that timed out.
    pub get_timeouts: u64,
    /// Items that failed to decode in `get`.
    pub decode_errors: u64,
    /// Items accepted but never delivered (dead producers, cancelled flushes).
    pub lost: u64,
    /// Locks taken over from dead owners.
    pub lock_recoveries: u64,
    /// Items dropped half-written or half-read by a dead process.
    pub frames_discarded: u64,
    /// Time blocked in `put`.
    pub put_blocked: HistogramSnapshot,
    /// Time blocked in `get`.
    pub get_blocked: HistogramSnapshot,
    /// Attached processes (live, or dead and not yet reaped).
    pub processes: Vec<ProcessSnapshot>,
    /// Creator's pid.
    pub created_by: u32,
    /// Creation time, ns since the Unix epoch.
    pub created_unix_ns: u64,
    /// Ring size in bytes.
    pub ring_capacity: u64,
    /// Whether any attached process may still run (is not known dead); `false` = stale (see
    /// [`cleanup`]).
    pub alive: bool,
    /// When the snapshot was taken (monotonic ns), for rates.
    pub taken_ns: u64,
}

/// Per-second rates between two snapshots of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Items put per second.
    pub puts: f64,
    /// Items got per second.
    pub gets: f64,
    /// Bytes put per second.
    pub bytes_put: f64,
    /// Bytes got per second.
    pub bytes_got: f64,
    /// Full events per second.
    pub full_events: f64,
    /// Empty events per second.
    pub empty_events: f64,
}

impl Snapshot {
    /// Rates from `earlier` to `self` (zero if no time passed or counters went backwards,
    /// which happens only if the queue was replaced).
    pub fn rate_since(&self, earlier: &Snapshot) -> Rates {
        let secs = self.taken_ns.saturating_sub(earlier.taken_ns) as f64 / 1e9;
        if secs <= 0.0 {
            return Rates::default();
        }
        let r = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        Rates {
            puts: r(self.puts, earlier.puts),
            gets: r(self.gets, earlier.gets),
            bytes_put: r(self.bytes_put, earlier.bytes_put),
            bytes_got: r(self.bytes_got, earlier.bytes_got),
            full_events: r(self.full_events, earlier.full_events),
            empty_events: r(self.empty_events, earlier.empty_events),
        }
    }

    /// Alive if an attached process is known alive; dead if every one is known dead (or none
    /// is attached: stale); unknown otherwise (processes of another pid namespace, or an
    /// unreadable `/proc`).
    pub fn liveness(&self) -> Liveness {
        let any = |l: Liveness| self.processes.iter().any(|p| p.liveness == l);
        if any(Liveness::Alive) {
            Liveness::Alive
        } else if any(Liveness::Unknown) {
            Liveness::Unknown
        } else {
            Liveness::Dead
        }
    }

    /// Processes that have put.
    pub fn producers(&self) -> usize {
        self.processes
            .iter()
            .filter(|p| matches!(p.role, Role::Producer | Role::Both))
            .count()
    }

    /// Processes that have got.
    pub fn consumers(&self) -> usize {
        self.processes
            .iter()
            .filter(|p| matches!(p.role, Role::Consumer | Role::Both))
            .count()
    }
}

/// The smallest and the largest stats file a queue can have (1 to [`MAX_SLOTS`] slots).
const MIN_LEN: usize = stats_len(1);
const MAX_LEN: usize = stats_len(MAX_SLOTS);

/// How old a never-initialised stats file (or a queue no process ever attached to) must be
/// before [`cleanup`] takes it for a crashed creator's leftovers.
const GRACE: Duration = Duration::from_secs(60);

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A stats file opened for reading: a regular file of a stats segment's size range, never
/// a symlink, FIFO or device. Observers only ever `pread` it into buffers of their own: a
/// file that shrinks meanwhile gives a short read (an error), never a `SIGBUS`.
struct StatsFile {
    file: File,
    len: usize,
    modified: Option<std::time::SystemTime>,
    path: PathBuf,
}

impl StatsFile {
    /// Opens `path` (the stats file of queue `id`): `lstat` first, so nothing but a regular
    /// file is even opened; then `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY` (a FIFO or device
    /// swapped in meanwhile neither blocks the open nor becomes a terminal) and `fstat` of
    /// the descriptor, which is what is read.
    fn open(path: &Path, id: &str) -> Result<Self, Error> {
        let os_error = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                name: id.strip_prefix("q.").unwrap_or(id).into(),
            },
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied { path: path.into() },
            _ if e.raw_os_error() == Some(libc::ELOOP) => {
                corrupt(path, "is a symlink (not followed)")
            }
            _ => Error::io(format!("opening {}", path.display()), e),
        };
        let kind = |t: std::fs::FileType| {
            if t.is_symlink() {
                Err(corrupt(path, "is a symlink (not followed)"))
            } else if !t.is_file() {
                Err(corrupt(path, "not a regular file"))
            } else {
                Ok(())
            }
        };
        kind(
            std::fs::symlink_metadata(path)
                .map_err(os_error)?
                .file_type(),
        )?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(os_error)?;
        let md = file
            .metadata()
            .map_err(|e| Error::io(format!("checking {}", path.display()), e))?;
        kind(md.file_type())?;
        let len = usize::try_from(md.len()).unwrap_or(usize::MAX);
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(corrupt(
                path,
                format!(
                    "length {len} is not a stats segment's ({MIN_LEN} to {MAX_LEN} bytes: 1 to \
                     {MAX_SLOTS} process slots)"
                ),
            ));
        }
        Ok(StatsFile {
            file,
            len,
            modified: md.modified().ok(),
            path: path.into(),
        })
    }

    /// Fills `buf` from the start of the file.
    fn read_into(&self, buf: &mut [u8]) -> Result<(), Error> {
        self.file.read_exact_at(buf, 0).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&self.path, "the file shrank while it was read")
            } else {
                Error::io(format!("reading {}", self.path.display()), e)
            }
        })
    }

    /// The word at byte `off`.
    fn word(&self, off: usize) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        self.file
            .read_exact_at(&mut b, off as u64)
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
        Ok(u64::from_le_bytes(b))
    }

    /// A consistent snapshot from copies of the file.
    ///
    /// Each attempt reads `retire_seq`, copies the file twice, and reads `retire_seq` again;
    /// it counts if the sequence was even and did not move. `gets` comes from the first copy
    /// and `puts` from the second, so that every item counted as got was counted as put
    /// (`gets <= puts`), as the counters' store order promises; `size` takes the puts of the
    /// first copy and `consumed` of the second, so it never shows more than the queue held. Attempts go on for at most [`RETRY_NS`], after which the last copies are
    /// used as they are (see [`crate::sync::RETRY_NS`]).
    fn snapshot(&self, id: &str) -> Result<Snapshot, Error> {
        let mut head = [0u8; STATS_HEADER_LEN];
        self.read_into(&mut head)?;
        // A foreign or broken file is refused at once, before any retry.
        validate(&Copy(&head), self.len, &self.path)?;
        let (mut early, mut late) = (vec![0u8; self.len], vec![0u8; self.len]);
        let seq_at = offset_of!(StatsHeader, retire_seq);
        let deadline = sys::mono_now().saturating_add(RETRY_NS);
        loop {
            let before = self.word(seq_at)?;
            let out_of_time = sys::mono_now() >= deadline;
            if !before.is_multiple_of(2) && !out_of_time {
                std::thread::yield_now();
                continue;
            }
            self.read_into(&mut early)?;
            self.read_into(&mut late)?;
            let after = self.word(seq_at)?;
            if (after == before && before.is_multiple_of(2))
                || out_of_time
                || sys::mono_now() >= deadline
            {
                break;
            }
        }
        let shape = validate(&Copy(&late), self.len, &self.path)?;
        let raw = read_raw(&Copy(&early), &Copy(&late), &shape, &self.path)?;
        Ok(finish(raw, shape, id))
    }

    /// Whether the creator never published the file (its magic is still zero) and it is
    /// older than [`GRACE`]: a creator that crashed while making it.
    fn unpublished_and_old(&self) -> bool {
        let old = self
            .modified
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > GRACE);
        old && self.word(offset_of!(StatsHeader, magic)).ok() == Some(0)
    }
}

/// Bounds-checked 64-bit words of a stats segment.
trait View {
    /// The word at byte offset `off` (0 outside the segment).
    fn at(&self, off: usize) -> u64;
}

/// The live segment, mapped (this process's own queues, and fuzzing).
struct Live<'a>(&'a [AtomicU64]);

impl View for Live<'_> {
    fn at(&self, off: usize) -> u64 {
        self.0.get(off / 8).map_or(0, |w| w.load(Acquire))
    }
}

/// A copy of the segment read from its file.
struct Copy<'a>(&'a [u8]);

impl View for Copy<'_> {
    fn at(&self, off: usize) -> u64 {
        let mut w = [0u8; 8];
        if let Some(b) = off.checked_add(8).and_then(|end| self.0.get(off..end)) {
            w.copy_from_slice(b);
        }
        u64::from_le_bytes(w)
    }
}

/// What the header says, checked.
struct Shape {
    slots: usize,
    name: String,
}

/// Checks a segment of `len` bytes whose header `v` shows: magic, version, lengths, slot
/// count (at most [`MAX_SLOTS`]) and name.
fn validate(v: &impl View, len: usize, path: &Path) -> Result<Shape, Error> {
    if len < MIN_LEN {
        return Err(corrupt(path, format!("{len} bytes is too short")));
    }
    if v.at(offset_of!(StatsHeader, magic)) != STATS_MAGIC {
        return Err(corrupt(path, "bad magic: not an mpqueue stats segment"));
    }
    let vh = v.at(offset_of!(StatsHeader, version));
    let version = vh as u32;
    if version >> 16 != LAYOUT_MAJOR {
        return Err(Error::Incompatible {
            path: path.into(),
            major: version >> 16,
            minor: version & 0xffff,
            supported: LAYOUT_MAJOR,
        });
    }
    let sl = v.at(offset_of!(StatsHeader, slot_count));
    let (slots, slot_len) = ((sl as u32) as usize, (sl >> 32) as usize);
    if (vh >> 32) as usize != STATS_HEADER_LEN || slot_len != SLOT_LEN {
        return Err(corrupt(path, "unexpected header or slot length"));
    }
    if slots == 0 || slots > MAX_SLOTS {
        return Err(corrupt(
            path,
            format!("{slots} process slots (a queue has 1 to {MAX_SLOTS})"),
        ));
    }
    if stats_len(slots) != len || v.at(offset_of!(StatsHeader, total_len)) != len as u64 {
        return Err(corrupt(
            path,
            format!("slot count {slots} does not match the file length {len}"),
        ));
    }
    let name_len = v.at(offset_of!(StatsHeader, name_len)) as usize;
    if name_len > NAME_MAX {
        return Err(corrupt(path, "name too long"));
    }
    let name_bytes: Vec<u8> = (0..NAME_MAX / 8)
        .flat_map(|i| v.at(offset_of!(StatsHeader, name) + 8 * i).to_le_bytes())
        .take(name_len)
        .collect();
    let name = String::from_utf8(name_bytes).map_err(|_| corrupt(path, "name is not UTF-8"))?;
    Ok(Shape { slots, name })
}

/// One attached process as read, before its liveness is looked up.
struct RawProcess {
    pid: u32,
    start_time: u64,
    pid_ns: u64,
    role: u64,
    heartbeat_ns: u64,
    buffered_items: u64,
    buffered_bytes: u64,
    puts: u64,
    gets: u64,
    full_events: u64,
    empty_events: u64,
}

/// The counters as read, before liveness and clocks.
struct Raw {
    gets: u64,
    size: u64,
    lost: u64,
    puts: u64,
    sums: [u64; 8],
    put_blocked: HistogramSnapshot,
    get_blocked: HistogramSnapshot,
    processes: Vec<RawProcess>,
    flags: u64,
    maxsize: u64,
    lock_recoveries: u64,
    frames_discarded: u64,
    created_by: u64,
    created_unix_ns: u64,
    ring_capacity: u64,
}

/// Per-slot counters summed into [`Raw::sums`], in this order.
const SUMMED: [usize; 8] = [
    offset_of!(ProcSlot, bytes_put),
    offset_of!(ProcSlot, bytes_got),
    offset_of!(ProcSlot, full_events),
    offset_of!(ProcSlot, empty_events),
    offset_of!(ProcSlot, put_timeouts),
    offset_of!(ProcSlot, get_timeouts),
    offset_of!(ProcSlot, decode_errors),
    offset_of!(ProcSlot, puts),
];

fn slot_base(i: usize) -> usize {
    STATS_HEADER_LEN + i * SLOT_LEN
}

fn hist(v: &impl View, base: usize) -> HistogramSnapshot {
    HistogramSnapshot {
        count: v.at(base + offset_of!(Histogram, count)),
        sum_ns: v.at(base + offset_of!(Histogram, sum_ns)),
        buckets: std::array::from_fn(|b| v.at(base + offset_of!(Histogram, buckets) + 8 * b)),
    }
}

/// Reads the counters: `gets` and the puts for `size` from `early`, then everything else
/// from `late`. For a live segment both are the same view and the loads happen in this
/// order. Every get is counted after its item's put, so `gets` read before `puts` keeps
/// `gets <= puts`; `size` is the puts read before `consumed` and `lost`, so it never
/// overshoots what the queue held (capacity bounds it); it can only come out low, and not
/// below zero.
fn read_raw(early: &impl View, late: &impl View, shape: &Shape, path: &Path) -> Result<Raw, Error> {
    let slots = shape.slots;
    let early_sum = |off: usize| {
        (0..=slots)
            .map(|i| early.at(slot_base(i) + off))
            .fold(0, u64::wrapping_add)
    };
    let gets = early_sum(offset_of!(ProcSlot, gets));
    let early_puts = early_sum(offset_of!(ProcSlot, puts));
    let consumed = late.at(offset_of!(StatsHeader, consumed));
    let lost = late.at(offset_of!(StatsHeader, lost));
    let sf = |i: usize, off: usize| late.at(slot_base(i) + off);
    let mut sums = [0u64; 8];
    let mut put_blocked = HistogramSnapshot::default();
    let mut get_blocked = HistogramSnapshot::default();
    let mut processes = Vec::new();
    for i in 0..=slots {
        for (sum, off) in sums.iter_mut().zip(SUMMED) {
            *sum = sum.wrapping_add(sf(i, off));
        }
        put_blocked.add(&hist(
            late,
            slot_base(i) + offset_of!(ProcSlot, put_blocked),
        ));
        get_blocked.add(&hist(
            late,
            slot_base(i) + offset_of!(ProcSlot, get_blocked),
        ));
        if i == 0 {
            continue;
        }
        match sf(i, offset_of!(ProcSlot, state)) {
            slot_state::FREE => continue,
            slot_state::RESERVED | slot_state::ACTIVE => {}
            other => return Err(corrupt(path, format!("slot {i} has unknown state {other}"))),
        }
        let pid = sf(i, offset_of!(ProcSlot, pid));
        let pid = u32::try_from(pid)
            .ok()
            .filter(|&p| p <= i32::MAX as u32)
            .ok_or_else(|| corrupt(path, format!("slot {i} has an invalid pid {pid}")))?;
        let puts = sf(i, offset_of!(ProcSlot, puts));
        let buffered_items = puts
            .saturating_sub(sf(i, offset_of!(ProcSlot, committed)))
            .saturating_sub(sf(i, offset_of!(ProcSlot, dropped)));
        let buffered_bytes = sf(i, offset_of!(ProcSlot, bytes_put))
            .saturating_sub(sf(i, offset_of!(ProcSlot, committed_bytes)))
            .saturating_sub(sf(i, offset_of!(ProcSlot, dropped_bytes)));
        processes.push(RawProcess {
            pid,
            start_time: sf(i, offset_of!(ProcSlot, start_time)),
            pid_ns: sf(i, offset_of!(ProcSlot, pid_ns)),
            role: sf(i, offset_of!(ProcSlot, role)),
            heartbeat_ns: sf(i, offset_of!(ProcSlot, heartbeat_ns)),
            buffered_items,
            buffered_bytes: if buffered_items == 0 {
                0
            } else {
                buffered_bytes
            },
            puts,
            gets: sf(i, offset_of!(ProcSlot, gets)),
            full_events: sf(i, offset_of!(ProcSlot, full_events)),
            empty_events: sf(i, offset_of!(ProcSlot, empty_events)),
        });
    }
    Ok(Raw {
        gets,
        size: early_puts.saturating_sub(consumed).saturating_sub(lost),
        lost,
        puts: sums[7],
        sums,
        put_blocked,
        get_blocked,
        processes,
        flags: late.at(offset_of!(StatsHeader, flags)),
        maxsize: late.at(offset_of!(StatsHeader, maxsize)),
        lock_recoveries: late.at(offset_of!(StatsHeader, lock_recoveries)),
        frames_discarded: late.at(offset_of!(StatsHeader, frames_discarded)),
        created_by: late.at(offset_of!(StatsHeader, creator_pid)),
        created_unix_ns: late.at(offset_of!(StatsHeader, created_unix_ns)),
        ring_capacity: late.at(offset_of!(StatsHeader, ring_capacity)),
    })
}

/// The snapshot of what was read: each process's liveness is looked up now, once.
fn finish(raw: Raw, shape: Shape, id: &str) -> Snapshot {
    let now = sys::coarse_now();
    let processes: Vec<ProcessSnapshot> = raw
        .processes
        .into_iter()
        .map(|p| {
            let liveness = sys::liveness(p.pid, p.start_time, p.pid_ns);
            ProcessSnapshot {
                pid: p.pid,
                start_time: p.start_time,
                alive: liveness != Liveness::Dead,
                liveness,
                role: Role::from_bits(p.role),
                heartbeat_age: (p.role != 0 && p.heartbeat_ns != 0)
                    .then(|| Duration::from_nanos(now.saturating_sub(p.heartbeat_ns))),
                buffered_items: p.buffered_items,
                buffered_bytes: p.buffered_bytes,
                puts: p.puts,
                gets: p.gets,
                full_events: p.full_events,
                empty_events: p.empty_events,
            }
        })
        .collect();
    let [
        bytes_put,
        bytes_got,
        full_events,
        empty_events,
        put_timeouts,
        get_timeouts,
        decode_errors,
        _,
    ] = raw.sums;
    Snapshot {
        name: shape.name,
        id: id.to_string(),
        named: raw.flags & FLAG_NAMED != 0,
        maxsize: raw.maxsize,
        size: raw.size,
        puts: raw.puts,
        gets: raw.gets,
        bytes_put,
        bytes_got,
        full_events,
        empty_events,
        put_timeouts,
        get_timeouts,
        decode_errors,
        lost: raw.lost,
        lock_recoveries: raw.lock_recoveries,
        frames_discarded: raw.frames_discarded,
        put_blocked: raw.put_blocked,
        get_blocked: raw.get_blocked,
        alive: processes.iter().any(|p| p.alive),
        processes,
        created_by: raw.created_by as u32,
        created_unix_ns: raw.created_unix_ns,
        ring_capacity: raw.ring_capacity,
        taken_ns: sys::mono_now(),
    }
}

/// Parses a stats segment given as live words (a mapping of this process's own queue);
/// never reads outside `words`. Public for fuzzing and for the `metrics` feature.
#[doc(hidden)]
pub fn parse(words: &[AtomicU64], path: &Path, id: &str) -> Result<Snapshot, Error> {
    let v = Live(words);
    let shape = validate(&v, words.len() * 8, path)?;
    // Seqlock: retry while a retirement moves counters between slots (bounded in time).
    let idle = AtomicU64::new(0);
    let seq = words
        .get(offset_of!(StatsHeader, retire_seq) / 8)
        .unwrap_or(&idle);
    let raw = crate::sync::read_consistent(seq, || read_raw(&v, &v, &shape, path))?;
    Ok(finish(raw, shape, id))
}

/// Parses a copy of a stats segment, as observers read it from its file; never reads
/// outside `bytes`. Public for fuzzing.
#[doc(hidden)]
pub fn parse_bytes(bytes: &[u8], path: &Path, id: &str) -> Result<Snapshot, Error> {
    let v = Copy(bytes);
    let shape = validate(&v, bytes.len(), path)?;
    let raw = read_raw(&v, &v, &shape, path)?;
    Ok(finish(raw, shape, id))
}

/// Removes the files of stale queues in `$MPQUEUE_DIR` (or the default directory): queues
/// every attached process of which is known to be dead. Returns the files removed.
///
/// # Errors
/// As for [`list`].
pub fn cleanup() -> Result<Vec<PathBuf>, Error> {
    cleanup_in(&segment::queue_dir())
}

/// Removes the files of stale queues in `dir` (see [`QueueRef::remove_if_stale`]).
///
/// # Errors
/// As for [`list`].
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
