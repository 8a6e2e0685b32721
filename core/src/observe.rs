//! Read-only observation of every queue on the machine, from its stats segment alone: the
//! API behind `mpqueue-top` and `mpqueue-exporter`.
//!
//! Observers never open a queue's data segment and never take a queue's locks. Every stats
//! file is treated as hostile: it is opened without following symlinks, mapped read-only,
//! checked against its own length, and parsed with bounds-checked reads; a bad file is an
//! error for that entry only.
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
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::Error;
use crate::layout::{
    HIST_BUCKETS, Histogram, LAYOUT_MAJOR, NAME_MAX, ProcSlot, SLOT_LEN, STATS_HEADER_LEN,
    STATS_MAGIC, StatsHeader, bucket_upper_ns, role, slot_state,
};
use crate::segment::{self, FLAG_NAMED};
use crate::sys::{self, Mapping};
use std::mem::offset_of;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

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

    /// Reads the queue's counters now.
    ///
    /// # Errors
    /// [`Error::Corrupt`], [`Error::Incompatible`], [`Error::PermissionDenied`], or
    /// [`Error::NotFound`] if the queue went away.
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        snapshot_file(&self.path, &self.id)
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
    /// Whether that process (same pid and start time) is still running.
    pub alive: bool,
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
    /// Items put and not yet got (buffered ones included).
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
    /// Whether any attached process is alive; `false` = stale (see [`cleanup`]).
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

fn snapshot_file(path: &Path, id: &str) -> Result<Snapshot, Error> {
    let (file, len) = segment::open_file(path, id, false, STATS_HEADER_LEN + 2 * SLOT_LEN)?;
    if !len.is_multiple_of(8) || len > 256 << 20 {
        return Err(Error::Corrupt {
            path: path.into(),
            reason: format!("length {len} is not a stats segment's"),
        });
    }
    let map = Mapping::file(&file, len, false)
        .map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
    // SAFETY: the mapping is `len` bytes (a multiple of 8), page-aligned, and only read
    // through atomic loads; AtomicU64 is valid for any bit pattern.
    let words = unsafe { std::slice::from_raw_parts(map.ptr() as *const AtomicU64, len / 8) };
    parse(words, path, id)
}

/// A bounds-checked view of a stats segment as 64-bit words.
struct Words<'a>(&'a [AtomicU64]);

impl Words<'_> {
    fn at(&self, byte_off: usize) -> u64 {
        self.0.get(byte_off / 8).map_or(0, |w| w.load(Acquire))
    }
}

fn hist(w: &Words<'_>, base: usize) -> HistogramSnapshot {
    HistogramSnapshot {
        count: w.at(base + offset_of!(Histogram, count)),
        sum_ns: w.at(base + offset_of!(Histogram, sum_ns)),
        buckets: std::array::from_fn(|b| w.at(base + offset_of!(Histogram, buckets) + 8 * b)),
    }
}

/// Parses a stats segment given as words; never reads outside `words`. Public for fuzzing.
#[doc(hidden)]
pub fn parse(words: &[AtomicU64], path: &Path, id: &str) -> Result<Snapshot, Error> {
    let w = Words(words);
    let corrupt = |reason: String| Error::Corrupt {
        path: path.into(),
        reason,
    };
    let len = words.len() * 8;
    if len < STATS_HEADER_LEN + 2 * SLOT_LEN {
        return Err(corrupt(format!("{len} bytes is too short")));
    }
    if w.at(offset_of!(StatsHeader, magic)) != STATS_MAGIC {
        return Err(corrupt("bad magic: not an mpqueue stats segment".into()));
    }
    let vh = w.at(offset_of!(StatsHeader, version));
    let version = vh as u32;
    if version >> 16 != LAYOUT_MAJOR {
        return Err(Error::Incompatible {
            path: path.into(),
            major: version >> 16,
            minor: version & 0xffff,
            supported: LAYOUT_MAJOR,
        });
    }
    let sl = w.at(offset_of!(StatsHeader, slot_count));
    let (slots, slot_len) = ((sl as u32) as usize, (sl >> 32) as usize);
    if (vh >> 32) as usize != STATS_HEADER_LEN || slot_len != SLOT_LEN {
        return Err(corrupt("unexpected header or slot length".into()));
    }
    if slots == 0
        || slots > 65_536
        || crate::layout::stats_len(slots) != len
        || w.at(offset_of!(StatsHeader, total_len)) != len as u64
    {
        return Err(corrupt(format!(
            "slot count {slots} does not match the file length {len}"
        )));
    }
    let name_len = w.at(offset_of!(StatsHeader, name_len)) as usize;
    if name_len > NAME_MAX {
        return Err(corrupt("name too long".into()));
    }
    let name_bytes: Vec<u8> = (0..NAME_MAX / 8)
        .flat_map(|i| w.at(offset_of!(StatsHeader, name) + 8 * i).to_le_bytes())
        .take(name_len)
        .collect();
    let name = String::from_utf8(name_bytes).map_err(|_| corrupt("name is not UTF-8".into()))?;
    let slot_base = |i: usize| STATS_HEADER_LEN + i * SLOT_LEN;
    let sf = |i: usize, off: usize| w.at(slot_base(i) + off);

    let header = w.0.get(offset_of!(StatsHeader, retire_seq) / 8);
    let read = || -> Result<Snapshot, Error> {
        // Order matters for `gets <= puts` and `size >= 0`: every get is counted after its
        // item's put (Release on the get side), so read gets, then consumed, then puts.
        let gets: u64 = (0..=slots)
            .map(|i| sf(i, offset_of!(ProcSlot, gets)))
            .fold(0, u64::wrapping_add);
        let consumed = w.at(offset_of!(StatsHeader, consumed));
        let lost = w.at(offset_of!(StatsHeader, lost));
        let sum = |off: usize| {
            (0..=slots)
                .map(|i| sf(i, off))
                .fold(0u64, u64::wrapping_add)
        };
        let puts = sum(offset_of!(ProcSlot, puts));
        let mut put_blocked = HistogramSnapshot::default();
        let mut get_blocked = HistogramSnapshot::default();
        let mut processes = Vec::new();
        let now = sys::coarse_now();
        for i in 0..=slots {
            put_blocked.add(&hist(&w, slot_base(i) + offset_of!(ProcSlot, put_blocked)));
            get_blocked.add(&hist(&w, slot_base(i) + offset_of!(ProcSlot, get_blocked)));
            if i == 0 {
                continue;
            }
            let state = sf(i, offset_of!(ProcSlot, state));
            match state {
                slot_state::FREE => continue,
                slot_state::RESERVED | slot_state::ACTIVE => {}
                other => return Err(corrupt(format!("slot {i} has unknown state {other}"))),
            }
            let pid = sf(i, offset_of!(ProcSlot, pid));
            let pid = u32::try_from(pid)
                .ok()
                .filter(|&p| p <= i32::MAX as u32)
                .ok_or_else(|| corrupt(format!("slot {i} has an invalid pid {pid}")))?;
            let start_time = sf(i, offset_of!(ProcSlot, start_time));
            let slot_words = &words[slot_base(i) / 8..(slot_base(i) + SLOT_LEN) / 8];
            let (buffered_items, buffered_bytes) = buffered_from(slot_words);
            let hb = sf(i, offset_of!(ProcSlot, heartbeat_ns));
            let has_role = sf(i, offset_of!(ProcSlot, role)) != 0;
            processes.push(ProcessSnapshot {
                pid,
                start_time,
                alive: sys::process_alive(pid, start_time),
                role: Role::from_bits(sf(i, offset_of!(ProcSlot, role))),
                heartbeat_age: (has_role && hb != 0)
                    .then(|| Duration::from_nanos(now.saturating_sub(hb))),
                buffered_items,
                buffered_bytes,
                puts: sf(i, offset_of!(ProcSlot, puts)),
                gets: sf(i, offset_of!(ProcSlot, gets)),
                full_events: sf(i, offset_of!(ProcSlot, full_events)),
                empty_events: sf(i, offset_of!(ProcSlot, empty_events)),
            });
        }
        let alive = processes.iter().any(|p| p.alive);
        Ok(Snapshot {
            name: name.clone(),
            id: id.to_string(),
            named: w.at(offset_of!(StatsHeader, flags)) & FLAG_NAMED != 0,
            maxsize: w.at(offset_of!(StatsHeader, maxsize)),
            size: puts.saturating_sub(consumed).saturating_sub(lost),
            puts,
            gets,
            bytes_put: sum(offset_of!(ProcSlot, bytes_put)),
            bytes_got: sum(offset_of!(ProcSlot, bytes_got)),
            full_events: sum(offset_of!(ProcSlot, full_events)),
            empty_events: sum(offset_of!(ProcSlot, empty_events)),
            put_timeouts: sum(offset_of!(ProcSlot, put_timeouts)),
            get_timeouts: sum(offset_of!(ProcSlot, get_timeouts)),
            decode_errors: sum(offset_of!(ProcSlot, decode_errors)),
            lost,
            lock_recoveries: w.at(offset_of!(StatsHeader, lock_recoveries)),
            frames_discarded: w.at(offset_of!(StatsHeader, frames_discarded)),
            put_blocked,
            get_blocked,
            processes,
            created_by: w.at(offset_of!(StatsHeader, creator_pid)) as u32,
            created_unix_ns: w.at(offset_of!(StatsHeader, created_unix_ns)),
            ring_capacity: w.at(offset_of!(StatsHeader, ring_capacity)),
            alive,
            taken_ns: sys::mono_now(),
        })
    };
    // Seqlock: retry while a retirement moves counters between slots (bounded).
    let idle = AtomicU64::new(0);
    crate::stats::read_consistent(header.unwrap_or(&idle), read)
}

fn buffered_from(slot: &[AtomicU64]) -> (u64, u64) {
    let at = |off: usize| slot.get(off / 8).map_or(0, |w| w.load(Acquire));
    let items = at(offset_of!(ProcSlot, puts))
        .saturating_sub(at(offset_of!(ProcSlot, committed)))
        .saturating_sub(at(offset_of!(ProcSlot, dropped)));
    let bytes = at(offset_of!(ProcSlot, bytes_put))
        .saturating_sub(at(offset_of!(ProcSlot, committed_bytes)))
        .saturating_sub(at(offset_of!(ProcSlot, dropped_bytes)));
    (items, if items == 0 { 0 } else { bytes })
}

/// Removes the files of stale queues in `$MPQUEUE_DIR` (or the default directory): queues
/// no live process is attached to. Returns the files removed.
///
/// # Errors
/// As for [`list`].
pub fn cleanup() -> Result<Vec<PathBuf>, Error> {
    cleanup_in(&segment::queue_dir())
}

/// Removes the files of stale queues in `dir`. A stats file that cannot be parsed is left
/// alone (it may be someone else's); one that never got initialised is removed once it is
/// older than a minute.
///
/// # Errors
/// As for [`list`].
pub fn cleanup_in(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    for q in list_in(dir)? {
        let stale = match q.snapshot() {
            Ok(s) => !s.alive,
            Err(Error::Corrupt { .. }) => uninitialised_and_old(&q.path),
            Err(_) => false,
        };
        if !stale {
            continue;
        }
        let mut files = vec![q.path.clone()];
        if let Some(name) = q.id.strip_prefix("q.") {
            files.insert(0, segment::named_paths(dir, name).0);
        }
        for f in files {
            if std::fs::remove_file(&f).is_ok() {
                removed.push(f);
            }
        }
    }
    Ok(removed)
}

fn uninitialised_and_old(path: &Path) -> bool {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let old = md
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age > Duration::from_secs(60));
    // A file whose magic is still zero was never published by its creator.
    let zero_magic = std::fs::read(path)
        .ok()
        .is_some_and(|b| b.len() >= 8 && b[..8] == [0; 8]);
    md.is_file() && old && zero_magic
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
