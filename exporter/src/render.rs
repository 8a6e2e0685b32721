//! Snapshots in, Prometheus text exposition format (0.0.4) out: pure functions, apart from
//! the HTTP server. Histograms are written from the shared-memory bucket counts as they are
//! (cumulated, never resampled), which `metrics-exporter-prometheus` cannot do.

use mpqueue::observe::{HistogramSnapshot, Snapshot};
use std::fmt::Write;

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

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The label set of a queue: its name, whether it is named, and its unique id (two
/// anonymous queues may share a label).
fn queue_labels(s: &Snapshot) -> Vec<(&'static str, String)> {
    vec![
        ("queue", s.name.clone()),
        ("named", s.named.to_string()),
        ("id", s.id.clone()),
    ]
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A per-queue family: one sample per queue.
fn queue_family(
    out: &mut String,
    snaps: &[&Snapshot],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&Snapshot) -> f64,
) {
    header(out, name, kind, help);
    for s in snaps {
        let l = queue_labels(s);
        let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _ = writeln!(out, "{name}{} {}", labels(&pairs), value(s));
    }
}

/// A per-process family: one sample per attached process.
fn process_family(
    out: &mut String,
    snaps: &[&Snapshot],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&mpqueue::observe::ProcessSnapshot) -> f64,
) {
    header(out, name, kind, help);
    for s in snaps {
        let l = queue_labels(s);
        for p in &s.processes {
            let pid = p.pid.to_string();
            let mut pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            pairs.push(("pid", &pid));
            pairs.push(("role", p.role.as_str()));
            let _ = writeln!(out, "{name}{} {}", labels(&pairs), value(p));
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

fn histogram_family(
    out: &mut String,
    snaps: &[&Snapshot],
    name: &str,
    help: &str,
    pick: impl Fn(&Snapshot) -> &HistogramSnapshot,
) {
    header(out, name, "histogram", help);
    let bounds = HistogramSnapshot::bounds();
    for s in snaps {
        let h = pick(s);
        let l = queue_labels(s);
        let base: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut cumulative = 0u64;
        for (bound, n) in bounds.iter().zip(h.buckets) {
            cumulative = cumulative.wrapping_add(n);
            let le = le(*bound);
            let mut pairs = base.clone();
            pairs.push(("le", &le));
            let _ = writeln!(out, "{name}_bucket{} {cumulative}", labels(&pairs));
        }
        // `_count` is the +Inf bucket, so the two always agree.
        let _ = writeln!(out, "{name}_sum{} {}", labels(&base), h.sum_ns as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{} {cumulative}", labels(&base));
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

/// Renders the families of every live queue in `snaps` (stale ones are left out), with
/// the default [`Options`].
#[cfg(test)]
pub fn render(out: &mut String, snaps: &[Snapshot]) {
    render_with(out, snaps, Options::default());
}

/// [`render`] with `options`.
pub fn render_with(out: &mut String, snaps: &[Snapshot], options: Options) {
    let live: Vec<&Snapshot> = snaps.iter().filter(|s| s.alive).collect();
    let l = &live;
    queue_family(
        out,
        l,
        "mpqueue_size",
        "gauge",
        "Items put and not yet got, including items in feeder buffers.",
        |s| s.size as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_maxsize",
        "gauge",
        "Capacity in items; 0 means unbounded.",
        |s| s.maxsize as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_puts_total",
        "counter",
        "Items accepted by put.",
        |s| s.puts as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_gets_total",
        "counter",
        "Items returned by get.",
        |s| s.gets as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_put_bytes_total",
        "counter",
        "Encoded bytes accepted by put.",
        |s| s.bytes_put as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_get_bytes_total",
        "counter",
        "Encoded bytes returned by get.",
        |s| s.bytes_got as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_full_events_total",
        "counter",
        "Put calls that found the queue full.",
        |s| s.full_events as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_empty_events_total",
        "counter",
        "Get calls that found the queue empty.",
        |s| s.empty_events as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_put_timeouts_total",
        "counter",
        "Put calls that timed out.",
        |s| s.put_timeouts as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_get_timeouts_total",
        "counter",
        "Get calls that timed out.",
        |s| s.get_timeouts as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_decode_errors_total",
        "counter",
        "Items that could not be decoded by get.",
        |s| s.decode_errors as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_lost_items_total",
        "counter",
        "Items accepted and never delivered (dead producers, cancelled flushes).",
        |s| s.lost as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_frames_discarded_total",
        "counter",
        "Items dropped half-written or half-read by a dead process.",
        |s| s.frames_discarded as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_lock_recoveries_total",
        "counter",
        "Locks taken over from a dead owner.",
        |s| s.lock_recoveries as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_processes",
        "gauge",
        "Attached processes that are alive.",
        |s| s.processes.iter().filter(|p| p.alive).count() as f64,
    );
    queue_family(
        out,
        l,
        "mpqueue_ring_capacity_bytes",
        "gauge",
        "Size of the shared channel ring.",
        |s| s.ring_capacity as f64,
    );
    histogram_family(
        out,
        l,
        "mpqueue_put_blocked_seconds",
        "Time put calls spent blocked on a full queue (calls that did not block are not observed).",
        |s| &s.put_blocked,
    );
    histogram_family(
        out,
        l,
        "mpqueue_get_blocked_seconds",
        "Time get calls spent blocked on an empty queue (calls that did not block are not observed).",
        |s| &s.get_blocked,
    );
    if !options.process_metrics {
        return;
    }
    process_family(
        out,
        l,
        "mpqueue_process_buffered_items",
        "gauge",
        "Items a process has put that are still in its feeder buffer.",
        |p| p.buffered_items as f64,
    );
    process_family(
        out,
        l,
        "mpqueue_process_buffered_bytes",
        "gauge",
        "Bytes of those items.",
        |p| p.buffered_bytes as f64,
    );
    process_family(
        out,
        l,
        "mpqueue_process_puts_total",
        "counter",
        "Items a process put.",
        |p| p.puts as f64,
    );
    process_family(
        out,
        l,
        "mpqueue_process_gets_total",
        "counter",
        "Items a process got.",
        |p| p.gets as f64,
    );
    process_family(
        out,
        l,
        "mpqueue_process_alive",
        "gauge",
        "1 if the attached process is running.",
        |p| f64::from(u8::from(p.alive)),
    );
    process_family(
        out,
        l,
        "mpqueue_process_heartbeat_age_seconds",
        "gauge",
        "Time since the process last put or got (-1 if never).",
        |p| p.heartbeat_age.map_or(-1.0, |d| d.as_secs_f64()),
    );
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
        Snapshot {
            name: name.into(),
            id: format!("q.{}", name.len()),
            named: true,
            maxsize: 10,
            size: 4,
            puts: 9,
            gets: 5,
            bytes_put: 90,
            bytes_got: 50,
            full_events: 1,
            empty_events: 2,
            put_timeouts: 0,
            get_timeouts: 1,
            decode_errors: 0,
            lost: 0,
            lock_recoveries: 0,
            frames_discarded: 0,
            put_blocked,
            get_blocked: HistogramSnapshot::default(),
            processes: vec![ProcessSnapshot {
                pid: 7,
                start_time: 1,
                alive: true,
                liveness: mpqueue::observe::Liveness::Alive,
                role: Role::Producer,
                heartbeat_age: Some(Duration::from_millis(1500)),
                buffered_items: 3,
                buffered_bytes: 30,
                puts: 9,
                gets: 0,
                full_events: 1,
                empty_events: 0,
            }],
            created_by: 7,
            created_unix_ns: 0,
            ring_capacity: 4096,
            alive,
            taken_ns: 0,
        }
    }

    #[test]
    fn golden_lines() {
        let mut out = String::new();
        render(&mut out, &[snap("jobs", true), snap("gone", false)]);
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
    }

    #[test]
    fn process_metrics_can_be_left_out() {
        let snaps = [snap("jobs", true)];
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

    proptest! {
        /// No queue name can break a line or inject a sample.
        #[test]
        fn names_cannot_inject(name in "\\PC*|[\"\\\\\n{}=, #]{0,20}") {
            let mut out = String::new();
            render(&mut out, &[snap(&name, true)]);
            let samples = out.lines().filter(|l| !l.starts_with('#')).count();
            // 16 queue families + 28 + 2 buckets/sum/count per histogram (+1 count) + 6 per process.
            prop_assert_eq!(samples, 16 + 2 * 30 + 6);
            for l in out.lines().filter(|l| !l.starts_with('#')) {
                let value = l.rsplit(' ').next().unwrap();
                prop_assert!(value.parse::<f64>().is_ok() , "{}", l);
                prop_assert!(l.starts_with("mpqueue_"));
            }
        }
    }
}
