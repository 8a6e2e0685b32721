//! Reports this process's queues through the [`metrics`](https://docs.rs/metrics) facade,
//! to whatever recorder the application installed (feature `metrics`), from the same table
//! of families as `mpqueue-exporter` ([`crate::families`]), so names and types agree.
//!
//! Each call of [`report`] reads the stats segment of every queue open in this process
//! and, per queue (labels [`queue_labels`]: `queue`, `named`, `id`):
//! - sets every per-queue counter of [`FAMILIES`] as a counter (`mpqueue_puts_total`,
//!   `mpqueue_lost_items_total`, …) and every per-queue gauge as a gauge (`mpqueue_size`,
//!   `mpqueue_processes`, …), with the family's help text and unit as its description; a
//!   value that is unknown ([`Source::QueueIfKnown`], such as `mpqueue_last_get_age_seconds`
//!   before the first get) is not set (a recorder keeps a gauge's last value), nor are
//!   `mpqueue_unfinished_tasks` and `mpqueue_tasks_abandoned_total` of a queue that is not
//!   a `JoinableQueue`;
//! - sets the `mpqueue_health` state set ([`Source::Health`]) as one gauge per verdict,
//!   labelled `status`, 1 for the queue's verdict and 0 for the others. The verdicts come
//!   from a [`HealthWindow`] with the default [`HealthRules`](crate::observe::HealthRules)
//!   that this module keeps across reports, judging each queue once per report; `Lagging`
//!   needs reports spanning half its window (5 s);
//! - sets each histogram family's [`Family::quantiles`] as gauges of their own names
//!   (`mpqueue_put_blocked_p50_seconds`, `…_p99_seconds`, and `get`): a recorder takes
//!   observations, not bucket counts, so the exact histograms
//!   (`mpqueue_put_blocked_seconds_bucket`/`_sum`/`_count`) are left to `mpqueue-exporter`,
//!   and nothing is reported under a histogram family's series names;
//! - leaves out the per-process families (`mpqueue_process_*`, one series per attached
//!   process): `mpqueue-exporter` serves them, and can leave them out too.
//!
//! Descriptions are given again on every call, so a recorder installed after the first
//! report still gets them.
//!
//! # Examples
//! ```
//! # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
//! let q = mpqueue::Queue::<u8>::builder().label("reported").create()?;
//! q.put(1)?;
//! mpqueue::metrics::report(); // with no recorder installed this does nothing
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::families::{
    FAMILIES, Family, HEALTH_LABEL, Kind, Source, Unit, health_states, queue_labels,
};
use crate::observe::{self, Health, HealthWindow, Snapshot};
use crate::registry;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The verdicts' memory across reports: a queue lags only over a window of them.
static WINDOW: Mutex<Option<HealthWindow>> = Mutex::new(None);

fn unit(u: Unit) -> ::metrics::Unit {
    match u {
        Unit::Count => ::metrics::Unit::Count,
        Unit::Bytes => ::metrics::Unit::Bytes,
        Unit::Seconds => ::metrics::Unit::Seconds,
    }
}

/// Gives the recorder the description of every name [`publish`] sets.
fn describe() {
    for f in FAMILIES {
        match (f.kind(), f.source()) {
            (Kind::Counter, Source::Queue(_) | Source::QueueIfKnown(_)) => {
                ::metrics::describe_counter!(f.name(), unit(f.unit()), f.help());
            }
            (Kind::Gauge, Source::Queue(_) | Source::QueueIfKnown(_) | Source::Health) => {
                ::metrics::describe_gauge!(f.name(), unit(f.unit()), f.help());
            }
            (_, Source::Histogram(_)) => {
                for q in f.quantiles() {
                    ::metrics::describe_gauge!(q.name(), unit(f.unit()), quantile_help(f, q.q()));
                }
            }
            _ => {} // per-process families: left to mpqueue-exporter
        }
    }
}

fn quantile_help(f: &Family, q: f64) -> String {
    format!(
        "The {q} quantile (upper bound of its bucket; 0 without observations) of {}: {}",
        f.name(),
        f.help()
    )
}

fn publish(s: &Snapshot, verdict: Health) {
    let labels = queue_labels(s);
    for f in FAMILIES {
        match (f.kind(), f.source()) {
            (Kind::Counter, Source::Queue(value)) => {
                ::metrics::counter!(f.name(), &labels).absolute(value(s) as u64);
            }
            (Kind::Counter, Source::QueueIfKnown(value)) => {
                if let Some(v) = value(s) {
                    ::metrics::counter!(f.name(), &labels).absolute(v as u64);
                }
            }
            (Kind::Gauge, Source::Queue(value)) => {
                ::metrics::gauge!(f.name(), &labels).set(value(s));
            }
            (Kind::Gauge, Source::QueueIfKnown(value)) => {
                if let Some(v) = value(s) {
                    ::metrics::gauge!(f.name(), &labels).set(v);
                }
            }
            (_, Source::Health) => {
                for (status, v) in health_states(verdict) {
                    let [queue, named, id] = labels.clone();
                    let labels = [queue, named, id, (HEALTH_LABEL, status.to_string())];
                    ::metrics::gauge!(f.name(), &labels).set(v);
                }
            }
            (_, Source::Histogram(pick)) => {
                for q in f.quantiles() {
                    ::metrics::gauge!(q.name(), &labels).set(q.value(pick(s)));
                }
            }
            _ => {} // per-process families: left to mpqueue-exporter
        }
    }
}

/// Reports every queue open in this process, once.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let q = mpqueue::Queue::<u8>::builder().dir(dir.path()).create()?;
/// q.put(7)?;
/// mpqueue::metrics::report(); // to the installed recorder, if any
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn report() {
    describe();
    let mut window = WINDOW.lock().unwrap_or_else(PoisonError::into_inner);
    let window = window.get_or_insert_with(HealthWindow::default);
    let mut ids = Vec::new();
    for queue in registry::live() {
        let seg = queue.segments();
        let id = seg
            .stats_path()
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        if let Ok(s) = observe::parse(seg.stats_words(), seg.stats_path(), &id) {
            publish(&s, window.judge(&s));
            ids.push(id);
        }
    }
    window.retain(&ids);
}

/// Starts a thread that calls [`report`] every `interval`, for the life of the process.
///
/// # Errors
/// The OS error if the thread cannot be started.
///
/// # Examples
/// ```no_run
/// // Once, after installing a recorder:
/// mpqueue::metrics::spawn_reporter(std::time::Duration::from_secs(10))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_reporter(interval: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mpqueue-metrics".into())
        .spawn(move || {
            loop {
                report();
                std::thread::sleep(interval);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::Scope;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// What [`report`] may set, by the table: name → Prometheus type.
    fn expected() -> BTreeMap<&'static str, &'static str> {
        let mut out = BTreeMap::new();
        for f in FAMILIES.iter().filter(|f| f.scope() == Scope::Queue) {
            if f.kind() == Kind::Histogram {
                out.extend(f.quantiles().iter().map(|q| (q.name(), "gauge")));
            } else {
                out.insert(f.name(), f.kind().as_str());
            }
        }
        out
    }

    /// Every `# TYPE` line of a page: name → the types given to it.
    fn declared_types(page: &str) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                out.entry(name).or_default().push(kind);
            }
        }
        out
    }

    /// What a recorder serves after one [`report`] of a queue whose counters and
    /// histograms are not all zero (a `JoinableQueue`, so that every family has a value).
    fn reported_page() -> String {
        let dir = tempfile::tempdir().unwrap();
        let q = crate::JoinableQueue::<u32>::from_builder(
            crate::Queue::builder()
                .dir(dir.path())
                .label("reported")
                .maxsize(1),
        )
        .unwrap();
        q.put(1).unwrap();
        assert!(q.put_timeout(2, Duration::from_millis(5)).is_err());
        q.get().unwrap();
        q.task_done().unwrap();
        assert!(q.get_timeout(Duration::from_millis(5)).is_err());
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, report);
        handle.render()
    }

    /// Every name `report` sets is in the table with the table's type, each declared once,
    /// and none is a histogram family's name or one of its `_bucket`/`_sum`/`_count` series
    /// (which would collide with `mpqueue-exporter`'s histograms).
    #[test]
    fn report_sets_table_names_with_table_types() {
        let page = reported_page();
        let expected = expected();
        let declared = declared_types(&page);
        for (name, kinds) in &declared {
            assert_eq!(kinds.len(), 1, "{name} declared {kinds:?}\n{page}");
            assert_eq!(expected.get(name), Some(&kinds[0]), "{name}\n{page}");
        }
        let names: Vec<&str> = declared.keys().copied().collect();
        assert_eq!(
            names,
            expected.keys().copied().collect::<Vec<_>>(),
            "{page}"
        );
        for line in page
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(expected.contains_key(name), "{line}");
        }
        for f in FAMILIES.iter().filter(|f| f.kind() == Kind::Histogram) {
            for suffix in ["", "_bucket", "_sum", "_count"] {
                let series = format!("{}{suffix}", f.name());
                assert!(!page.contains(&format!("\n{series}{{")), "{series}\n{page}");
            }
        }
        let puts = "mpqueue_puts_total{queue=\"reported\",named=\"false\",id=\"a.";
        assert!(
            page.lines()
                .any(|l| l.starts_with(puts) && l.ends_with(" 1")),
            "{page}"
        );
        assert!(page.contains("# HELP mpqueue_puts_total Items accepted by put.\n"));
    }

    /// The health state set: one gauge per verdict, 1 for the queue's (a queue that just
    /// moved an item and is empty again is `ok`), 0 for the others; the wait quantiles
    /// and the ages are there too.
    #[test]
    fn report_sets_the_health_state_set_and_the_ages() {
        let page = reported_page();
        let health: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("mpqueue_health{"))
            .collect();
        assert_eq!(health.len(), Health::ALL.len(), "{page}");
        for h in Health::ALL {
            let want = if h == Health::Ok { " 1" } else { " 0" };
            let status = format!("status=\"{}\"", h.as_str());
            assert!(
                health
                    .iter()
                    .any(|l| l.contains(&status) && l.ends_with(want)),
                "{status}{want}\n{page}"
            );
        }
        for name in [
            "mpqueue_oldest_item_age_seconds{",
            "mpqueue_last_get_age_seconds{",
            "mpqueue_buffered_items{",
            "mpqueue_item_wait_p50_seconds{",
            "mpqueue_unfinished_tasks{",
            "mpqueue_tasks_abandoned_total{",
        ] {
            assert!(page.lines().any(|l| l.starts_with(name)), "{name}\n{page}");
        }
    }

    /// `promtool check metrics` (Debian package prometheus; `scripts/test.sh` installs
    /// it) accepts what `report` sets, lint checks included.
    #[test]
    fn report_passes_promtool() {
        let page = reported_page();
        let mut p = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool (Debian package prometheus) must be installed; scripts/test.sh installs it");
        p.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
        let out = p.wait_with_output().unwrap();
        let msg = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "promtool: {msg}\n{page}");
    }
}
