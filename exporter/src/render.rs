//! Snapshots in, Prometheus text exposition format (0.0.4) out: pure functions, apart from
//! the HTTP server. Every family comes from the library's table
//! ([`mpqueue::families::FAMILIES`]), in its order, so the exporter and the `metrics`
//! feature cannot disagree on names or types. Histograms are written from the
//! shared-memory bucket counts as they are (cumulated, never resampled), which
//! `metrics-exporter-prometheus` cannot do. The health state set (`mpqueue_health`) is
//! written from verdicts the caller judged ([`Judged`]), since they need earlier scrapes.

use mpqueue::families::{self, FAMILIES, Family, HEALTH_LABEL, Scope, Source};
use mpqueue::observe::{Health, HistogramSnapshot, ProcessSnapshot, Snapshot};
use std::fmt::Write;

/// A queue as a scrape shows it: its snapshot, and the health verdict the exporter's
/// [`Verdicts`](crate::verdicts::Verdicts), kept across scrapes, gave it for this scrape.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The queue's counters, read for this scrape.
    pub snapshot: Snapshot,
    /// Its verdict (written as the `mpqueue_health` state set).
    pub health: Health,
}

/// Escapes a label value per the exposition format: backslash, double quote, newline.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `{k="v",...}` with every value escaped.
fn labels(pairs: &[(&str, String)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// `base` (a [`labels`] set) with `more` added at its end.
fn with_labels(base: &str, more: &[(&str, String)]) -> String {
    let more = labels(more);
    match (base, more.as_str()) {
        ("{}", _) => more,
        (_, "{}") => base.to_string(),
        _ => format!("{},{}", &base[..base.len() - 1], &more[1..]),
    }
}

fn header(out: &mut String, f: &Family) {
    let _ = writeln!(out, "# HELP {} {}", f.name(), f.help());
    let _ = writeln!(out, "# TYPE {} {}", f.name(), f.kind().as_str());
}

/// One sample per queue, left out where `value` gives `None`.
fn queue_samples(
    out: &mut String,
    snaps: &[&Snapshot],
    name: &str,
    value: impl Fn(&Snapshot) -> Option<f64>,
) {
    for s in snaps {
        if let Some(v) = value(s) {
            let l = labels(&families::queue_labels(s));
            let _ = writeln!(out, "{name}{l} {v}");
        }
    }
}

/// The state set: one sample per queue and verdict, 1 for the queue's verdict.
fn health_samples(out: &mut String, queues: &[&Judged], name: &str) {
    for q in queues {
        let base = labels(&families::queue_labels(&q.snapshot));
        for (status, v) in families::health_states(q.health) {
            let l = with_labels(&base, &[(HEALTH_LABEL, status.to_string())]);
            let _ = writeln!(out, "{name}{l} {v}");
        }
    }
}

/// One sample per attached process of each queue.
fn process_samples(
    out: &mut String,
    snaps: &[&Snapshot],
    name: &str,
    value: fn(&ProcessSnapshot) -> f64,
) {
    for s in snaps {
        let base = labels(&families::queue_labels(s));
        for p in &s.processes {
            let l = with_labels(&base, &families::process_labels(p));
            let _ = writeln!(out, "{name}{l} {}", value(p));
        }
    }
}

/// Upper bound of each bucket in seconds, as Prometheus `le` text.
fn le(bound_ns: u64) -> String {
    if bound_ns == u64::MAX {
        "+Inf".into()
    } else {
        format!("{}", bound_ns as f64 / 1e9)
    }
}

/// One histogram per queue: cumulative `_bucket`s, `_sum` in seconds, `_count`.
fn histogram_samples(
    out: &mut String,
    snaps: &[&Snapshot],
    name: &str,
    pick: fn(&Snapshot) -> &HistogramSnapshot,
) {
    let bounds = HistogramSnapshot::bounds();
    for s in snaps {
        let h = pick(s);
        let base = labels(&families::queue_labels(s));
        let mut cumulative = 0u64;
        for (bound, n) in bounds.iter().zip(h.buckets) {
            cumulative = cumulative.wrapping_add(n);
            let l = with_labels(&base, &[("le", le(*bound))]);
            let _ = writeln!(out, "{name}_bucket{l} {cumulative}");
        }
        // `_count` is the +Inf bucket, so the two always agree.
        let _ = writeln!(out, "{name}_sum{base} {}", h.sum_ns as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{base} {cumulative}");
    }
}

/// What a scrape shows besides the per-queue families.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Whether to write the per-process families (`mpqueue_process_*`, labelled by `pid`):
    /// one series per attached process, so a new set for every new process.
    pub process_metrics: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            process_metrics: true,
        }
    }
}

/// Renders the families of every live queue in `queues` (stale ones are left out), with
/// the default [`Options`].
#[cfg(test)]
pub fn render(out: &mut String, queues: &[Judged]) {
    render_with(out, queues, Options::default());
}

/// Renders the families of every live queue in `queues` with `options`: every family of the
/// table, in its order (per-process ones only if `options.process_metrics`). A value the
/// table says is unknown has no sample (`mpqueue_last_get_age_seconds` before the first
/// get); every other family has one per live queue (or process) on every scrape.
pub fn render_with(out: &mut String, queues: &[Judged], options: Options) {
    let judged: Vec<&Judged> = queues.iter().filter(|q| q.snapshot.alive).collect();
    let live: Vec<&Snapshot> = judged.iter().map(|q| &q.snapshot).collect();
    for f in FAMILIES {
        if f.scope() == Scope::Process && !options.process_metrics {
            continue;
        }
        header(out, f);
        match f.source() {
            Source::Queue(value) => queue_samples(out, &live, f.name(), |s| Some(value(s))),
            Source::QueueIfKnown(value) => queue_samples(out, &live, f.name(), value),
            Source::Health => health_samples(out, &judged, f.name()),
            Source::Process(value) => process_samples(out, &live, f.name(), value),
            Source::Histogram(pick) => histogram_samples(out, &live, f.name(), pick),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpqueue::observe::{ProcessSnapshot, Role};
    use proptest::prelude::*;
    use std::time::Duration;

    fn snap(name: &str, alive: bool) -> Snapshot {
        let mut put_blocked = HistogramSnapshot::default();
        put_blocked.buckets[0] = 2;
        put_blocked.buckets[17] = 1;
        put_blocked.count = 3;
        put_blocked.sum_ns = 100_000_000;
        let mut p = ProcessSnapshot::default();
        p.pid = 7;
        p.start_time = 1;
        p.alive = true;
        p.liveness = mpqueue::observe::Liveness::Alive;
        p.role = Role::Producer;
        p.heartbeat_age = Some(Duration::from_millis(1500));
        p.buffered_items = 3;
        p.buffered_bytes = 30;
        p.puts = 9;
        p.full_events = 1;
        let mut s = Snapshot::default();
        s.name = name.into();
        s.id = format!("q.{}", name.len());
        s.named = true;
        s.maxsize = 10;
        s.size = 4;
        s.puts = 9;
        s.gets = 5;
        s.bytes_put = 90;
        s.bytes_got = 50;
        s.full_events = 1;
        s.empty_events = 2;
        s.get_timeouts = 1;
        s.put_blocked = put_blocked;
        s.wait.buckets[19] = 3; // 0.27 to 0.54 s
        s.wait.buckets[20] = 1;
        s.wait.count = 4;
        s.wait.sum_ns = 2_000_000_000;
        s.oldest_age = Some(Duration::from_millis(2500));
        s.last_get_age = Some(Duration::from_millis(250));
        s.last_put_age = Some(Duration::from_millis(10));
        s.buffered_items = 3;
        s.processes = vec![p];
        s.created_by = 7;
        s.ring_capacity = 4096;
        s.alive = alive;
        s
    }

    /// Each snapshot with the verdict it gets alone (as a first scrape judges it).
    fn judged(snaps: Vec<Snapshot>) -> Vec<Judged> {
        snaps
            .into_iter()
            .map(|snapshot| Judged {
                health: snapshot.health(),
                snapshot,
            })
            .collect()
    }

    #[test]
    fn golden_lines() {
        let mut out = String::new();
        let mut queues = judged(vec![snap("jobs", true), snap("gone", false)]);
        queues[0].health = Health::Lagging; // as a window of scrapes can judge it
        render(&mut out, &queues);
        for line in [
            "# HELP mpqueue_puts_total Items accepted by put.",
            "# TYPE mpqueue_puts_total counter",
            "mpqueue_puts_total{queue=\"jobs\",named=\"true\",id=\"q.4\"} 9",
            "mpqueue_size{queue=\"jobs\",named=\"true\",id=\"q.4\"} 4",
            "# TYPE mpqueue_put_blocked_seconds histogram",
            "mpqueue_put_blocked_seconds_bucket{queue=\"jobs\",named=\"true\",id=\"q.4\",le=\"0.000001024\"} 2",
            "mpqueue_put_blocked_seconds_bucket{queue=\"jobs\",named=\"true\",id=\"q.4\",le=\"0.134217728\"} 3",
            "mpqueue_put_blocked_seconds_bucket{queue=\"jobs\",named=\"true\",id=\"q.4\",le=\"+Inf\"} 3",
            "mpqueue_put_blocked_seconds_sum{queue=\"jobs\",named=\"true\",id=\"q.4\"} 0.1",
            "mpqueue_put_blocked_seconds_count{queue=\"jobs\",named=\"true\",id=\"q.4\"} 3",
            "mpqueue_process_buffered_items{queue=\"jobs\",named=\"true\",id=\"q.4\",pid=\"7\",role=\"producer\"} 3",
            "mpqueue_process_heartbeat_age_seconds{queue=\"jobs\",named=\"true\",id=\"q.4\",pid=\"7\",role=\"producer\"} 1.5",
            "mpqueue_buffered_items{queue=\"jobs\",named=\"true\",id=\"q.4\"} 3",
            "mpqueue_oldest_item_age_seconds{queue=\"jobs\",named=\"true\",id=\"q.4\"} 2.5",
            "mpqueue_last_get_age_seconds{queue=\"jobs\",named=\"true\",id=\"q.4\"} 0.25",
            "# TYPE mpqueue_health gauge",
            "mpqueue_health{queue=\"jobs\",named=\"true\",id=\"q.4\",status=\"lagging\"} 1",
            "mpqueue_health{queue=\"jobs\",named=\"true\",id=\"q.4\",status=\"ok\"} 0",
            "# TYPE mpqueue_item_wait_seconds histogram",
            "mpqueue_item_wait_seconds_bucket{queue=\"jobs\",named=\"true\",id=\"q.4\",le=\"0.268435456\"} 0",
            "mpqueue_item_wait_seconds_bucket{queue=\"jobs\",named=\"true\",id=\"q.4\",le=\"0.536870912\"} 3",
            "mpqueue_item_wait_seconds_bucket{queue=\"jobs\",named=\"true\",id=\"q.4\",le=\"1.073741824\"} 4",
            "mpqueue_item_wait_seconds_sum{queue=\"jobs\",named=\"true\",id=\"q.4\"} 2",
            "mpqueue_item_wait_seconds_count{queue=\"jobs\",named=\"true\",id=\"q.4\"} 4",
        ] {
            assert!(out.lines().any(|l| l == line), "missing: {line}\n{out}");
        }
        assert!(!out.contains("gone"), "stale queues are dropped");
        // Buckets are cumulative and never decrease.
        let counts: Vec<u64> = out
            .lines()
            .filter(|l| l.starts_with("mpqueue_put_blocked_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.len(), 28);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]));
        // Exactly one status is on.
        let on: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("mpqueue_health{") && l.ends_with(" 1"))
            .collect();
        assert_eq!(on.len(), 1, "{out}");
    }

    /// An age nobody knows has no sample (never a made-up -1 or 0), while an empty
    /// queue's oldest item is 0 s old.
    #[test]
    fn unknown_ages_have_no_sample() {
        let mut never_got = snap("fresh", true);
        never_got.last_get_age = None;
        never_got.oldest_age = None; // items wait; their age is unknown
        let mut empty = snap("empty", true);
        empty.size = 0;
        empty.oldest_age = None;
        let mut out = String::new();
        render(&mut out, &judged(vec![never_got, empty]));
        let samples = |name: &str| -> Vec<&str> {
            out.lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .collect()
        };
        assert_eq!(
            samples("mpqueue_last_get_age_seconds"),
            ["mpqueue_last_get_age_seconds{queue=\"empty\",named=\"true\",id=\"q.5\"} 0.25"]
        );
        assert_eq!(
            samples("mpqueue_oldest_item_age_seconds"),
            ["mpqueue_oldest_item_age_seconds{queue=\"empty\",named=\"true\",id=\"q.5\"} 0"]
        );
        assert_eq!(samples("mpqueue_health").len(), 2 * Health::ALL.len());
    }

    /// The unfinished count and the abandoned items of a `JoinableQueue`; no sample of
    /// either for a plain queue, even one whose departed consumers left gets behind.
    #[test]
    fn task_counts_only_for_joinable_queues() {
        let mut joinable = snap("pool", true);
        joinable.unfinished = Some(12);
        joinable.tasks_abandoned = 2;
        let mut plain = snap("plain", true);
        plain.tasks_abandoned = 5;
        let mut out = String::new();
        render(&mut out, &judged(vec![joinable, plain]));
        let samples = |name: &str| -> Vec<&str> {
            out.lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .collect()
        };
        assert_eq!(
            samples("mpqueue_unfinished_tasks"),
            ["mpqueue_unfinished_tasks{queue=\"pool\",named=\"true\",id=\"q.4\"} 12"]
        );
        assert_eq!(
            samples("mpqueue_tasks_abandoned_total"),
            ["mpqueue_tasks_abandoned_total{queue=\"pool\",named=\"true\",id=\"q.4\"} 2"]
        );
        assert!(
            out.contains("# TYPE mpqueue_unfinished_tasks gauge\n"),
            "{out}"
        );
        assert!(
            out.contains("# TYPE mpqueue_tasks_abandoned_total counter\n"),
            "{out}"
        );
    }

    #[test]
    fn process_metrics_can_be_left_out() {
        let snaps = judged(vec![snap("jobs", true)]);
        let mut full = String::new();
        render(&mut full, &snaps);
        let mut lean = String::new();
        render_with(
            &mut lean,
            &snaps,
            Options {
                process_metrics: false,
            },
        );
        assert!(full.contains("mpqueue_process_puts_total{"));
        assert!(!lean.contains("mpqueue_process_"), "{lean}");
        assert!(!lean.contains("pid=\""), "{lean}");
        // Everything else is the same, line for line.
        let kept: Vec<&str> = full
            .lines()
            .filter(|l| !l.contains("mpqueue_process_"))
            .collect();
        assert_eq!(kept, lean.lines().collect::<Vec<_>>());
    }

    /// A sample with every kind of value: a stale queue, a name that needs escaping, a
    /// process that never put or got, every histogram non-empty, unknown ages (no
    /// sample), a `JoinableQueue` next to plain ones (task counts for it alone), and a
    /// verdict only a window of scrapes gives (`lagging`).
    fn golden_sample() -> Vec<Judged> {
        let mut odd = snap("we\"ird\\name\n", true);
        odd.named = false;
        odd.get_blocked.buckets[3] = 5;
        odd.get_blocked.buckets[27] = 1;
        odd.get_blocked.count = 6;
        odd.get_blocked.sum_ns = 2_500_000_123;
        odd.decode_errors = 2;
        odd.lost = u64::MAX;
        odd.last_get_age = None;
        odd.oldest_age = None;
        odd.unfinished = Some(3);
        odd.tasks_abandoned = 1;
        let mut idle = odd.processes[0].clone();
        idle.pid = 8;
        idle.role = Role::Idle;
        idle.heartbeat_age = None;
        idle.alive = false;
        odd.processes.push(idle);
        let mut queues = judged(vec![snap("jobs", true), snap("gone", false), odd]);
        queues[0].health = Health::Lagging;
        queues
    }

    /// The whole page, byte for byte, as the exporter has always written it
    /// (`MPQUEUE_WRITE_GOLDEN=1` rewrites `golden.prom` after a deliberate change).
    #[test]
    fn golden_page() {
        let mut out = String::new();
        render(&mut out, &golden_sample());
        if std::env::var_os("MPQUEUE_WRITE_GOLDEN").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/src/golden.prom"),
                &out,
            )
            .unwrap();
        }
        assert_eq!(out, include_str!("golden.prom"));
    }

    /// Every family of the library's table is on the page with its type, and nothing
    /// else is (the exporter's own `mpqueue_exporter_*` families are added by `main`).
    #[test]
    fn every_table_family_is_rendered_with_its_type() {
        let mut out = String::new();
        render(&mut out, &golden_sample());
        let types: Vec<&str> = out.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let expected: Vec<String> = FAMILIES
            .iter()
            .map(|f| format!("# TYPE {} {}", f.name(), f.kind().as_str()))
            .collect();
        assert_eq!(types, expected);
        for f in FAMILIES {
            let samples = out
                .lines()
                .filter(|l| l.starts_with(f.name()) && !l.starts_with('#'))
                .count();
            assert!(samples > 0, "{} has no sample", f.name());
        }
    }

    proptest! {
        /// No queue name can break a line or inject a sample.
        #[test]
        fn names_cannot_inject(name in "\\PC*|[\"\\\\\n{}=, #]{0,20}") {
            let mut out = String::new();
            render(&mut out, &judged(vec![snap(&name, true)]));
            let samples = out.lines().filter(|l| !l.starts_with('#')).count();
            // 19 queue families (the task counts are for joinable queues only) + 5
            // health states + 28 buckets, sum and count per histogram + 6 per process.
            prop_assert_eq!(samples, 19 + 5 + 3 * 30 + 6);
            for l in out.lines().filter(|l| !l.starts_with('#')) {
                let value = l.rsplit(' ').next().unwrap();
                prop_assert!(value.parse::<f64>().is_ok() , "{}", l);
                prop_assert!(l.starts_with("mpqueue_"));
            }
        }
    }
}
