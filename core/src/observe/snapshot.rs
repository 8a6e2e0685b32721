//! What a snapshot of a queue holds: its counters, histograms and attached processes, and
//! the rates between two snapshots.

use crate::layout::{HIST_BUCKETS, bucket_upper_ns, role};
use crate::sys::Liveness;
use std::time::Duration;

/// A blocked-time histogram: non-cumulative bucket counts, see [`HistogramSnapshot::bounds`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    ///
    /// # Examples
    /// ```
    /// let b = mpqueue::observe::HistogramSnapshot::bounds();
    /// assert_eq!(b[0], 1024);
    /// assert_eq!(*b.last().unwrap(), u64::MAX);
    /// ```
    pub fn bounds() -> [u64; HIST_BUCKETS] {
        std::array::from_fn(bucket_upper_ns)
    }

    /// The `q`-quantile (0..=1) as the upper bound of the bucket it falls in; `None` without
    /// observations. For the overflow bucket it returns the largest finite bound.
    ///
    /// # Examples
    /// ```
    /// let mut h = mpqueue::observe::HistogramSnapshot::default();
    /// assert_eq!(h.quantile(0.5), None);
    /// h.buckets[3] = 10; // ten waits of at most 2^13 ns
    /// assert_eq!(h.quantile(0.99), Some(std::time::Duration::from_nanos(8192)));
    /// ```
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

    pub(super) fn add(&mut self, other: &HistogramSnapshot) {
        self.count = self.count.wrapping_add(other.count);
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.wrapping_add(b);
        }
    }
}

/// What a process does with the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Attached, has neither put nor got yet.
    #[default]
    Idle,
    /// Has put.
    Producer,
    /// Has got.
    Consumer,
    /// Has done both.
    Both,
}

impl Role {
    pub(super) fn from_bits(bits: u64) -> Self {
        match (bits & role::PRODUCER != 0, bits & role::CONSUMER != 0) {
            (false, false) => Role::Idle,
            (true, false) => Role::Producer,
            (false, true) => Role::Consumer,
            (true, true) => Role::Both,
        }
    }

    /// `"producer"`, `"consumer"`, `"both"` or `"idle"`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(mpqueue::observe::Role::Both.as_str(), "both");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Idle => "idle",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Both => "both",
        }
    }
}

/// One attached process. New fields may be added: build one with `Default` and set fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// Time since its last put or get; `None` if it never did either.
    pub heartbeat_age: Option<Duration>,
    /// Time since its last put; `None` if it never put (or its counters are off).
    pub last_put_age: Option<Duration>,
    /// Time since its `get` last returned an item; `None` if it never got one.
    pub last_get_age: Option<Duration>,
    /// Age of the oldest item in its feeder buffer; `None` if the buffer is empty.
    pub buffered_age: Option<Duration>,
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

/// A process slot nothing is known about yet: liveness unknown (so `alive`), idle.
impl Default for ProcessSnapshot {
    fn default() -> Self {
        ProcessSnapshot {
            pid: 0,
            start_time: 0,
            alive: true,
            liveness: Liveness::Unknown,
            role: Role::Idle,
            heartbeat_age: None,
            last_put_age: None,
            last_get_age: None,
            buffered_age: None,
            buffered_items: 0,
            buffered_bytes: 0,
            puts: 0,
            gets: 0,
            full_events: 0,
            empty_events: 0,
        }
    }
}

/// The state of one queue at one moment, read without touching the queue. New fields may
/// be added (every counter a later layout adds): build one with `Default` and set fields.
///
/// # Examples
/// ```
/// let mut s = mpqueue::observe::Snapshot::default();
/// s.name = "made-up".into();
/// s.puts = 3;
/// assert_eq!(s.puts, 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
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
    /// Items that have left the queue: taken out by a consumer, or lost. The oldest item
    /// still queued is put number `left` (0-based, in the order the puts were counted).
    pub left: u64,
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
    /// Time in queue, from `put` to `get`, of every 16th item each producer put (see
    /// `docs/stats-layout.md`).
    pub wait: HistogramSnapshot,
    /// Age of the oldest item in the queue, feeder buffers included; `None` when empty
    /// (or unknown: a layout 1.1 segment, or producers with the counters off). Read from
    /// the put timeline (see `docs/stats-layout.md`): older than the truth by at most about
    /// 1 s for items up to 8 s old, 17 s up to 2 min, 4.6 min up to 37 min and 73 min up to
    /// 9.8 h (an item older than that shows as at least 9.8 h old), and not younger, except
    /// in two cases, where it can be: after newer items were dropped (a cancelled flush, a
    /// dead producer), and when an item that waited in a feeder buffer reached the ring
    /// behind newer ones. An [`AgeTracker`](super::AgeTracker) shown this queue's earlier
    /// snapshots narrows it to the time between two of them.
    pub oldest_age: Option<Duration>,
    /// Time since any consumer's `get` last returned an item (processes that have gone
    /// included); `None` if none ever did.
    pub last_get_age: Option<Duration>,
    /// Time since any process last put; `None` if none ever did.
    pub last_put_age: Option<Duration>,
    /// Items in the feeder buffers of all processes (counted in `size`).
    pub buffered_items: u64,
    /// For a `JoinableQueue`: items put and not yet marked done (nor lost or abandoned);
    /// `None` for other queues. Read while items move, it can be one low for a moment.
    pub unfinished: Option<u64>,
    /// Items processes got and never marked done before they detached or died (counted
    /// done, so that `join` does not wait for them).
    pub tasks_abandoned: u64,
    /// Attached processes (live, or dead and not yet reaped).
    pub processes: Vec<ProcessSnapshot>,
    /// Creator's pid.
    pub created_by: u32,
    /// Creation time, ns since the Unix epoch.
    pub created_unix_ns: u64,
    /// Ring size in bytes.
    pub ring_capacity: u64,
    /// Whether any attached process may still run (is not known dead); `false` = stale (see
    /// [`cleanup`](super::cleanup)).
    pub alive: bool,
    /// When the snapshot was taken (monotonic ns), for rates.
    pub taken_ns: u64,
}

/// Per-second rates between two snapshots of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
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
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// let r = &mpqueue::observe::list()?[0];
    /// let before = r.snapshot()?;
    /// q.put(1)?;
    /// let rates = r.snapshot()?.rate_since(&before);
    /// assert!(rates.puts > 0.0 && rates.gets == 0.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let _q = mpqueue::Queue::<u8>::new(0)?;
    /// let s = mpqueue::observe::list()?[0].snapshot()?;
    /// assert_eq!(s.liveness(), mpqueue::observe::Liveness::Alive);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// q.put(1)?;
    /// let s = mpqueue::observe::list()?[0].snapshot()?;
    /// assert_eq!((s.producers(), s.consumers()), (1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producers(&self) -> usize {
        self.processes
            .iter()
            .filter(|p| matches!(p.role, Role::Producer | Role::Both))
            .count()
    }

    /// Processes that have got.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.get()?;
    /// assert_eq!(mpqueue::observe::list()?[0].snapshot()?.consumers(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consumers(&self) -> usize {
        self.processes
            .iter()
            .filter(|p| matches!(p.role, Role::Consumer | Role::Both))
            .count()
    }
}
