//! The metric families mpqueue publishes, in one table: the names, types, help texts,
//! units, label sets and readers that `mpqueue-exporter` and the `metrics` feature both use,
//! so the two cannot diverge.
//!
//! Each [`Family`] reads its value(s) from an [`observe::Snapshot`](crate::observe::Snapshot):
//! one sample per queue ([`Source::Queue`], or [`Source::QueueIfKnown`] where a value can
//! be unknown or not apply, as `mpqueue_unfinished_tasks` of a queue that is not a
//! `JoinableQueue`), one per attached process of each queue ([`Source::Process`]), or one
//! bucketed histogram per queue ([`Source::Histogram`]). One family, `mpqueue_health`, is a
//! state set ([`Source::Health`]): its value is the publisher's verdict, judged by a
//! [`HealthWindow`](crate::observe::HealthWindow) kept across refreshes.
//! Samples are labelled with [`queue_labels`], and per-process ones also with
//! [`process_labels`]. [`FAMILIES`] lists them in the order the exporter writes them.
//!
//! Histograms are exact only where the bucket counts can be written as they are (the
//! exporter). Where only observations or plain gauges fit (the `metrics` facade), a
//! histogram family is published as its [`Family::quantiles`] instead: gauges under names
//! of their own (`mpqueue_put_blocked_p50_seconds`, …), never as `_count`/`_sum` series of
//! the histogram's name with another type.
//!
//! # Examples
//! ```
//! use mpqueue::families::{self, Kind, Scope};
//! let puts = families::find("mpqueue_puts_total").unwrap();
//! assert_eq!((puts.kind(), puts.scope()), (Kind::Counter, Scope::Queue));
//! assert_eq!(puts.kind().as_str(), "counter");
//! // Every name appears once.
//! let mut names: Vec<_> = families::FAMILIES.iter().map(|f| f.name()).collect();
//! names.sort();
//! names.dedup();
//! assert_eq!(names.len(), families::FAMILIES.len());
//! ```

use crate::observe::{Health, HistogramSnapshot, ProcessSnapshot, Snapshot};
use Kind::{Counter, Gauge};
use Unit::{Bytes, Count, Seconds};

/// A family's Prometheus type.
///
/// Exhaustive on purpose: every publisher matches on it, and a new type must be handled by
/// each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Only ever goes up (until the queue is recreated).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations, with `_bucket`, `_sum` and `_count` series.
    Histogram,
}

impl Kind {
    /// `"counter"`, `"gauge"` or `"histogram"`, as written after `# TYPE`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(mpqueue::families::Kind::Gauge.as_str(), "gauge");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// What a family's values count or measure. The name of a family in bytes or seconds ends
/// with that unit (before any `_total`), as Prometheus recommends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// A plain number: items, calls, processes, or a 0/1 flag.
    Count,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
}

impl Unit {
    /// `"count"`, `"bytes"` or `"seconds"`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(mpqueue::families::Unit::Bytes.as_str(), "bytes");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Bytes => "bytes",
            Unit::Seconds => "seconds",
        }
    }
}

/// Whether a family has a series per queue or per attached process of each queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Labelled by [`queue_labels`].
    Queue,
    /// Labelled by [`queue_labels`] and [`process_labels`]: one series per process, so a new
    /// set for every new process.
    Process,
}

/// How to read a family's value(s) from a snapshot.
///
/// Exhaustive on purpose: a new kind of source must be handled by every publisher.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// One value per queue.
    Queue(fn(&Snapshot) -> f64),
    /// One value per queue, or none while it is unknown (nothing got yet, say) or does not
    /// apply to the queue (task counts of a queue that is not a `JoinableQueue`): the
    /// sample is left out then, rather than written as a made-up number.
    QueueIfKnown(fn(&Snapshot) -> Option<f64>),
    /// A state set (Prometheus has no such type: it is a [`Kind::Gauge`]): one sample per
    /// queue and verdict of [`Health::ALL`], labelled [`HEALTH_LABEL`] with
    /// [`Health::as_str`], 1 for the queue's verdict and 0 for the others
    /// ([`health_states`]). The verdict is not in a snapshot: the publisher judges it with
    /// a [`HealthWindow`](crate::observe::HealthWindow) it keeps across refreshes, once
    /// per refresh, since `Lagging` needs earlier snapshots.
    Health,
    /// One value per attached process ([`Snapshot::processes`]).
    Process(fn(&ProcessSnapshot) -> f64),
    /// One histogram per queue; bucket bounds are [`HistogramSnapshot::bounds`] (ns).
    Histogram(fn(&Snapshot) -> &HistogramSnapshot),
}

/// A quantile of a histogram family, published as a gauge where histograms cannot be
/// (see the [module doc](self)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    q: f64,
    name: &'static str,
}

impl Quantile {
    /// The quantile, in 0..=1.
    ///
    /// # Examples
    /// ```
    /// let f = mpqueue::families::find("mpqueue_put_blocked_seconds").unwrap();
    /// assert_eq!(f.quantiles()[0].q(), 0.5);
    /// ```
    pub fn q(&self) -> f64 {
        self.q
    }

    /// The gauge's name, such as `mpqueue_put_blocked_p99_seconds`.
    ///
    /// # Examples
    /// ```
    /// let f = mpqueue::families::find("mpqueue_put_blocked_seconds").unwrap();
    /// assert_eq!(f.quantiles()[1].name(), "mpqueue_put_blocked_p99_seconds");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The quantile of `h` in seconds ([`HistogramSnapshot::quantile`]), 0 without
    /// observations.
    ///
    /// # Examples
    /// ```
    /// let f = mpqueue::families::find("mpqueue_get_blocked_seconds").unwrap();
    /// let empty = mpqueue::observe::HistogramSnapshot::default();
    /// assert_eq!(f.quantiles()[0].value(&empty), 0.0);
    /// ```
    pub fn value(&self, h: &HistogramSnapshot) -> f64 {
        h.quantile(self.q).map_or(0.0, |d| d.as_secs_f64())
    }
}

/// One metric family: its name, type, help text, unit, and how to read it.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    unit: Unit,
    source: Source,
    quantiles: &'static [Quantile],
}

impl Family {
    /// The family's name, such as `mpqueue_puts_total`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(mpqueue::families::FAMILIES[0].name(), "mpqueue_size");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its Prometheus type.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::families::{find, Kind};
    /// assert_eq!(find("mpqueue_size").unwrap().kind(), Kind::Gauge);
    /// ```
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its help text: one line, no backslash (written as it is after `# HELP`).
    ///
    /// # Examples
    /// ```
    /// let f = mpqueue::families::find("mpqueue_puts_total").unwrap();
    /// assert_eq!(f.help(), "Items accepted by put.");
    /// ```
    pub fn help(&self) -> &'static str {
        self.help
    }

    /// What its values count or measure.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::families::{find, Unit};
    /// assert_eq!(find("mpqueue_put_bytes_total").unwrap().unit(), Unit::Bytes);
    /// ```
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// Whether it has a series per queue or per process.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::families::{find, Scope};
    /// assert_eq!(find("mpqueue_process_alive").unwrap().scope(), Scope::Process);
    /// ```
    pub fn scope(&self) -> Scope {
        match self.source {
            Source::Queue(_) | Source::QueueIfKnown(_) | Source::Health | Source::Histogram(_) => {
                Scope::Queue
            }
            Source::Process(_) => Scope::Process,
        }
    }

    /// How to read it. A [`Kind::Histogram`] family always has a [`Source::Histogram`], and
    /// counters and gauges never do.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::families::{find, Source};
    /// assert!(matches!(find("mpqueue_size").unwrap().source(), Source::Queue(_)));
    /// ```
    pub fn source(&self) -> Source {
        self.source
    }

    /// The quantile gauges a histogram family is published as where histograms cannot be
    /// (empty for counters and gauges). Their names are the family's with `_pNN` put before
    /// the unit (`mpqueue_put_blocked_seconds` → `mpqueue_put_blocked_p50_seconds`), and
    /// belong to no other family.
    ///
    /// # Examples
    /// ```
    /// let f = mpqueue::families::find("mpqueue_get_blocked_seconds").unwrap();
    /// let names: Vec<_> = f.quantiles().iter().map(|q| q.name()).collect();
    /// assert_eq!(names, ["mpqueue_get_blocked_p50_seconds", "mpqueue_get_blocked_p99_seconds"]);
    /// ```
    pub fn quantiles(&self) -> &'static [Quantile] {
        self.quantiles
    }
}

const fn queue(
    kind: Kind,
    name: &'static str,
    unit: Unit,
    help: &'static str,
    value: fn(&Snapshot) -> f64,
) -> Family {
    Family {
        name,
        kind,
        help,
        unit,
        source: Source::Queue(value),
        quantiles: &[],
    }
}

const fn queue_if_known(
    name: &'static str,
    unit: Unit,
    help: &'static str,
    value: fn(&Snapshot) -> Option<f64>,
) -> Family {
    Family {
        name,
        kind: Gauge,
        help,
        unit,
        source: Source::QueueIfKnown(value),
        quantiles: &[],
    }
}

const fn process(
    kind: Kind,
    name: &'static str,
    unit: Unit,
    help: &'static str,
    value: fn(&ProcessSnapshot) -> f64,
) -> Family {
    Family {
        name,
        kind,
        help,
        unit,
        source: Source::Process(value),
        quantiles: &[],
    }
}

const fn histogram(
    name: &'static str,
    help: &'static str,
    quantiles: &'static [Quantile],
    pick: fn(&Snapshot) -> &HistogramSnapshot,
) -> Family {
    Family {
        name,
        kind: Kind::Histogram,
        help,
        unit: Unit::Seconds,
        source: Source::Histogram(pick),
        quantiles,
    }
}

/// Every family, in the order `mpqueue-exporter` writes them: the per-queue ones, then the
/// histograms, then the per-process ones.
///
/// Values are `f64`, as in the exposition format, so a counter above 2^53 loses its
/// lowest bits.
///
/// # Examples
/// ```
/// use mpqueue::families::{FAMILIES, Kind};
/// let histograms: Vec<_> = FAMILIES.iter().filter(|f| f.kind() == Kind::Histogram).map(|f| f.name()).collect();
/// assert_eq!(
///     histograms,
///     ["mpqueue_put_blocked_seconds", "mpqueue_get_blocked_seconds", "mpqueue_item_wait_seconds"]
/// );
/// ```
#[rustfmt::skip]
pub static FAMILIES: &[Family] = &[
    queue(Gauge, "mpqueue_size", Count, "Items put and not yet got, including items in feeder buffers.", |s| s.size as f64),
    queue(Gauge, "mpqueue_maxsize", Count, "Capacity in items; 0 means unbounded.", |s| s.maxsize as f64),
    queue(Counter, "mpqueue_puts_total", Count, "Items accepted by put.", |s| s.puts as f64),
    queue(Counter, "mpqueue_gets_total", Count, "Items returned by get.", |s| s.gets as f64),
    queue(Counter, "mpqueue_put_bytes_total", Bytes, "Encoded bytes accepted by put.", |s| s.bytes_put as f64),
    queue(Counter, "mpqueue_get_bytes_total", Bytes, "Encoded bytes returned by get.", |s| s.bytes_got as f64),
    queue(Counter, "mpqueue_full_events_total", Count, "Put calls that found the queue full.", |s| s.full_events as f64),
    queue(Counter, "mpqueue_empty_events_total", Count, "Get calls that found the queue empty.", |s| s.empty_events as f64),
    queue(Counter, "mpqueue_put_timeouts_total", Count, "Put calls that timed out.", |s| s.put_timeouts as f64),
    queue(Counter, "mpqueue_get_timeouts_total", Count, "Get calls that timed out.", |s| s.get_timeouts as f64),
    queue(Counter, "mpqueue_decode_errors_total", Count, "Items that could not be decoded by get.", |s| s.decode_errors as f64),
    queue(Counter, "mpqueue_lost_items_total", Count, "Items accepted and never delivered (dead producers, cancelled flushes).", |s| s.lost as f64),
    queue(Counter, "mpqueue_frames_discarded_total", Count, "Items dropped half-written or half-read by a dead process.", |s| s.frames_discarded as f64),
    queue(Counter, "mpqueue_lock_recoveries_total", Count, "Locks taken over from a dead owner.", |s| s.lock_recoveries as f64),
    queue(Gauge, "mpqueue_processes", Count, "Attached processes that are alive.", |s| s.processes.iter().filter(|p| p.alive).count() as f64),
    queue(Gauge, "mpqueue_ring_capacity_bytes", Bytes, "Size of the shared channel ring.", |s| s.ring_capacity as f64),
    queue(Gauge, "mpqueue_buffered_items", Count, "Items put and still in a feeder buffer, summed over the processes (counted in mpqueue_size).", |s| s.buffered_items as f64),
    queue_if_known("mpqueue_oldest_item_age_seconds", Seconds, "Age of the oldest item in the queue, feeder buffers included; 0 when empty, no sample when unknown (old layout, counters off).", oldest_age),
    queue_if_known("mpqueue_last_get_age_seconds", Seconds, "Time since a get last returned an item of the queue; no sample until one has.", |s| s.last_get_age.map(|d| d.as_secs_f64())),
    queue_if_known("mpqueue_unfinished_tasks", Count, "JoinableQueue only: items put and not yet marked done by task_done (lost or abandoned ones count as done); no sample for other queues.", |s| s.unfinished.map(|n| n as f64)),
    Family { name: "mpqueue_tasks_abandoned_total", kind: Counter, help: "JoinableQueue only: items processes got and never marked done before they exited or died (counted done, so join does not wait for them); no sample for other queues.", unit: Count, source: Source::QueueIfKnown(tasks_abandoned), quantiles: &[] },
    Family { name: "mpqueue_health", kind: Gauge, help: "Health verdict as a state set: 1 for the current status (ok, idle, lagging, stalled, no_consumer), 0 for the others.", unit: Count, source: Source::Health, quantiles: &[] },
    histogram(
        "mpqueue_put_blocked_seconds",
        "Time put calls spent blocked on a full queue (calls that did not block are not observed).",
        &[Quantile { q: 0.5, name: "mpqueue_put_blocked_p50_seconds" }, Quantile { q: 0.99, name: "mpqueue_put_blocked_p99_seconds" }],
        |s| &s.put_blocked,
    ),
    histogram(
        "mpqueue_get_blocked_seconds",
        "Time get calls spent blocked on an empty queue (calls that did not block are not observed).",
        &[Quantile { q: 0.5, name: "mpqueue_get_blocked_p50_seconds" }, Quantile { q: 0.99, name: "mpqueue_get_blocked_p99_seconds" }],
        |s| &s.get_blocked,
    ),
    histogram(
        "mpqueue_item_wait_seconds",
        "Time items spent in the queue, from put to get (every 16th item of each producer).",
        &[Quantile { q: 0.5, name: "mpqueue_item_wait_p50_seconds" }, Quantile { q: 0.99, name: "mpqueue_item_wait_p99_seconds" }],
        |s| &s.wait,
    ),
    process(Gauge, "mpqueue_process_buffered_items", Count, "Items a process has put that are still in its feeder buffer.", |p| p.buffered_items as f64),
    process(Gauge, "mpqueue_process_buffered_bytes", Bytes, "Bytes of those items.", |p| p.buffered_bytes as f64),
    process(Counter, "mpqueue_process_puts_total", Count, "Items a process put.", |p| p.puts as f64),
    process(Counter, "mpqueue_process_gets_total", Count, "Items a process got.", |p| p.gets as f64),
    process(Gauge, "mpqueue_process_alive", Count, "1 if the attached process is running.", |p| f64::from(u8::from(p.alive))),
    process(Gauge, "mpqueue_process_heartbeat_age_seconds", Seconds, "Time since the process last put or got (-1 if never).", |p| p.heartbeat_age.map_or(-1.0, |d| d.as_secs_f64())),
];

/// `mpqueue_oldest_item_age_seconds`: the age, 0 when the queue is empty, unknown when
/// items wait and their age is not known.
fn oldest_age(s: &Snapshot) -> Option<f64> {
    match s.oldest_age {
        Some(age) => Some(age.as_secs_f64()),
        None => (s.size == 0).then_some(0.0),
    }
}

/// `mpqueue_tasks_abandoned_total`: only for a `JoinableQueue` (one whose
/// [`Snapshot::unfinished`] is known). Other queues have no tasks: the consumers that left
/// them never marked anything done, and their gets would show up as abandoned.
fn tasks_abandoned(s: &Snapshot) -> Option<f64> {
    s.unfinished.map(|_| s.tasks_abandoned as f64)
}

/// The label that names a verdict in the [`Source::Health`] state set.
pub const HEALTH_LABEL: &str = "status";

/// The samples of the [`Source::Health`] state set for a queue judged `verdict`: each
/// verdict of [`Health::ALL`] (its [`HEALTH_LABEL`] value) with 1.0 for `verdict` and 0.0
/// for the others.
///
/// # Examples
/// ```
/// use mpqueue::observe::Health;
/// let states = mpqueue::families::health_states(Health::Stalled);
/// assert_eq!(states.len(), Health::ALL.len());
/// assert!(states.contains(&("stalled", 1.0)) && states.contains(&("ok", 0.0)));
/// assert_eq!(states.iter().map(|(_, v)| v).sum::<f64>(), 1.0);
/// ```
pub fn health_states(verdict: Health) -> [(&'static str, f64); Health::ALL.len()] {
    Health::ALL.map(|h| (h.as_str(), if h == verdict { 1.0 } else { 0.0 }))
}

/// The family called `name`, if any.
///
/// # Examples
/// ```
/// assert!(mpqueue::families::find("mpqueue_gets_total").is_some());
/// assert!(mpqueue::families::find("mpqueue_put_blocked_seconds_count").is_none());
/// ```
pub fn find(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The labels of every sample of a queue: `queue` (its name; untrusted text, escape it),
/// `named` (`"true"`/`"false"`) and `id` (its stats file's id: two anonymous queues may share
/// a name, never an id).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let q = mpqueue::Queue::<u8>::builder().dir(dir.path()).name("labelled").create()?;
/// let s = mpqueue::observe::list_in(dir.path())?[0].snapshot()?;
/// let labels = mpqueue::families::queue_labels(&s);
/// assert_eq!(labels[0], ("queue", "labelled".to_string()));
/// assert_eq!(labels[1], ("named", "true".to_string()));
/// # drop(q);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn queue_labels(s: &Snapshot) -> [(&'static str, String); 3] {
    [
        ("queue", s.name.clone()),
        ("named", s.named.to_string()),
        ("id", s.id.clone()),
    ]
}

/// The labels a per-process sample adds to [`queue_labels`]: `pid` and `role`
/// ([`Role::as_str`](crate::observe::Role::as_str)).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let q = mpqueue::Queue::<u8>::builder().dir(dir.path()).create()?;
/// q.put(1)?;
/// let s = mpqueue::observe::list_in(dir.path())?[0].snapshot()?;
/// let labels = mpqueue::families::process_labels(&s.processes[0]);
/// assert_eq!(labels[0], ("pid", std::process::id().to_string()));
/// assert_eq!(labels[1], ("role", "producer".to_string()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn process_labels(p: &ProcessSnapshot) -> [(&'static str, String); 2] {
    [
        ("pid", p.pid.to_string()),
        ("role", p.role.as_str().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every series name a family occupies in the exposition format.
    fn series(f: &Family) -> Vec<String> {
        let mut out = vec![f.name.to_string()];
        if f.kind == Kind::Histogram {
            out.extend(["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", f.name)));
        }
        out.extend(f.quantiles.iter().map(|q| q.name.to_string()));
        out
    }

    #[test]
    fn no_two_families_share_a_series_name() {
        let mut seen = BTreeSet::new();
        for f in FAMILIES {
            for name in series(f) {
                assert!(seen.insert(name.clone()), "{name} is taken twice");
            }
        }
    }

    #[test]
    fn names_follow_the_prometheus_conventions() {
        for f in FAMILIES {
            let n = f.name;
            assert!(n.starts_with("mpqueue_"), "{n}");
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{n}"
            );
            assert_eq!(
                f.kind == Kind::Counter,
                n.ends_with("_total"),
                "{n}: only counters end in _total"
            );
            let base = n.strip_suffix("_total").unwrap_or(n);
            match f.unit {
                Unit::Bytes => assert!(base.ends_with("_bytes"), "{n}"),
                Unit::Seconds => assert!(base.ends_with("_seconds"), "{n}"),
                Unit::Count => assert!(
                    !base.ends_with("_bytes") && !base.ends_with("_seconds"),
                    "{n}"
                ),
            }
            assert!(
                !f.help.is_empty() && !f.help.contains(['\n', '\\']),
                "{n}: help is one plain line"
            );
        }
    }

    #[test]
    fn histograms_and_only_histograms_have_buckets_and_quantiles() {
        for f in FAMILIES {
            let is_histogram = matches!(f.source, Source::Histogram(_));
            assert_eq!(f.kind == Kind::Histogram, is_histogram, "{}", f.name);
            assert_eq!(f.quantiles.is_empty(), !is_histogram, "{}", f.name);
            for q in f.quantiles {
                let base = f.name.strip_suffix("_seconds").unwrap();
                let p = format!("{}", q.q * 100.0);
                assert_eq!(q.name, format!("{base}_p{p}_seconds"));
            }
        }
    }

    #[test]
    fn the_state_set_has_one_status_set_per_verdict() {
        let state_sets: Vec<_> = FAMILIES
            .iter()
            .filter(|f| matches!(f.source, Source::Health))
            .map(|f| (f.name, f.kind))
            .collect();
        assert_eq!(state_sets, [("mpqueue_health", Kind::Gauge)]);
        for verdict in Health::ALL {
            let states = health_states(verdict);
            let on: Vec<_> = states.iter().filter(|(_, v)| *v == 1.0).collect();
            assert_eq!(on, [&(verdict.as_str(), 1.0)]);
            assert!(states.iter().all(|(_, v)| *v == 0.0 || *v == 1.0));
        }
    }

    /// The oldest age is 0 for an empty queue, and unknown (no sample) only when items
    /// wait and nobody knows since when.
    #[test]
    fn the_oldest_age_is_zero_when_empty_and_unknown_only_with_items() {
        let mut s = Snapshot::default();
        assert_eq!(oldest_age(&s), Some(0.0));
        s.size = 3;
        assert_eq!(oldest_age(&s), None);
        s.oldest_age = Some(std::time::Duration::from_millis(2500));
        assert_eq!(oldest_age(&s), Some(2.5));
        let last_get = find("mpqueue_last_get_age_seconds").unwrap();
        let Source::QueueIfKnown(value) = last_get.source else {
            panic!("{last_get:?}")
        };
        assert_eq!(value(&s), None, "never got: no sample");
        s.last_get_age = Some(std::time::Duration::from_secs(4));
        assert_eq!(value(&s), Some(4.0));
    }

    /// The task families have samples for a `JoinableQueue` only (its `unfinished` is
    /// known), even where another queue's departed consumers left gets never marked done.
    #[test]
    fn task_families_are_for_joinable_queues_only() {
        let value = |name: &str, s: &Snapshot| {
            let f = find(name).unwrap();
            let Source::QueueIfKnown(value) = f.source else {
                panic!("{f:?}")
            };
            value(s)
        };
        // A plain queue's consumers that went: gets never marked done.
        let mut s = Snapshot {
            tasks_abandoned: 7,
            ..Snapshot::default()
        };
        assert_eq!(value("mpqueue_unfinished_tasks", &s), None);
        assert_eq!(value("mpqueue_tasks_abandoned_total", &s), None);
        s.unfinished = Some(3);
        assert_eq!(value("mpqueue_unfinished_tasks", &s), Some(3.0));
        assert_eq!(value("mpqueue_tasks_abandoned_total", &s), Some(7.0));
        assert_eq!(
            find("mpqueue_tasks_abandoned_total").unwrap().kind(),
            Kind::Counter
        );
    }

    /// The exporter writes the per-queue families, then the histograms, then the
    /// per-process ones (so leaving the last out drops a tail of the page).
    #[test]
    fn families_are_in_page_order() {
        let rank = |f: &Family| match f.source {
            Source::Queue(_) | Source::QueueIfKnown(_) | Source::Health => 0,
            Source::Histogram(_) => 1,
            Source::Process(_) => 2,
        };
        assert!(FAMILIES.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));
    }
}
