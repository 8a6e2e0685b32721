//! Reports this process's queues through the [`metrics`](https://docs.rs/metrics) facade,
//! to whatever recorder the application installed (feature `metrics`).
//!
//! Each call of [`report`] reads the stats segment of every queue open in this process
//! and sets, per queue (labels `queue`, `named`, `id`):
//! counters `mpqueue_puts_total`, `mpqueue_gets_total`, `mpqueue_put_bytes_total`,
//! `mpqueue_get_bytes_total`, `mpqueue_full_events_total`, `mpqueue_empty_events_total`,
//! `mpqueue_put_timeouts_total`, `mpqueue_get_timeouts_total`, `mpqueue_lost_items_total`,
//! `mpqueue_frames_discarded_total`, `mpqueue_lock_recoveries_total`,
//! `mpqueue_put_blocked_seconds_count`/`_sum`, `mpqueue_get_blocked_seconds_count`/`_sum`;
//! gauges `mpqueue_size`, `mpqueue_maxsize`, `mpqueue_processes`, and the blocked-time
//! quantiles `mpqueue_put_blocked_p50_seconds`, `…_p99_seconds` (and `get`). Recorders
//! take observations, not bucket counts, so the exact histograms are left to
//! `mpqueue-exporter`, which reads them from shared memory.
//!
//! # Examples
//! ```
//! # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
//! let q = mpqueue::Queue::<u8>::builder().label("reported").create()?;
//! q.put(1)?;
//! mpqueue::metrics::report(); // with no recorder installed this does nothing
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::observe::{self, HistogramSnapshot, Snapshot};
use crate::registry;
use std::time::Duration;

fn labels(s: &Snapshot) -> Vec<(&'static str, String)> {
    vec![
        ("queue", s.name.clone()),
        ("named", s.named.to_string()),
        ("id", s.id.clone()),
    ]
}

fn quantile(h: &HistogramSnapshot, q: f64) -> f64 {
    h.quantile(q).map_or(0.0, |d| d.as_secs_f64())
}

fn publish(s: &Snapshot) {
    let l = labels(s);
    for (name, v) in [
        ("mpqueue_puts_total", s.puts),
        ("mpqueue_gets_total", s.gets),
        ("mpqueue_put_bytes_total", s.bytes_put),
        ("mpqueue_get_bytes_total", s.bytes_got),
        ("mpqueue_full_events_total", s.full_events),
        ("mpqueue_empty_events_total", s.empty_events),
        ("mpqueue_put_timeouts_total", s.put_timeouts),
        ("mpqueue_get_timeouts_total", s.get_timeouts),
        ("mpqueue_lost_items_total", s.lost),
        ("mpqueue_frames_discarded_total", s.frames_discarded),
        ("mpqueue_lock_recoveries_total", s.lock_recoveries),
        ("mpqueue_put_blocked_seconds_count", s.put_blocked.count),
        ("mpqueue_get_blocked_seconds_count", s.get_blocked.count),
    ] {
        ::metrics::counter!(name, &l).absolute(v);
    }
    for (name, v) in [
        ("mpqueue_size", s.size as f64),
        ("mpqueue_maxsize", s.maxsize as f64),
        (
            "mpqueue_processes",
            s.processes.iter().filter(|p| p.alive).count() as f64,
        ),
        (
            "mpqueue_put_blocked_seconds_sum",
            s.put_blocked.sum_ns as f64 / 1e9,
        ),
        (
            "mpqueue_get_blocked_seconds_sum",
            s.get_blocked.sum_ns as f64 / 1e9,
        ),
        (
            "mpqueue_put_blocked_p50_seconds",
            quantile(&s.put_blocked, 0.5),
        ),
        (
            "mpqueue_put_blocked_p99_seconds",
            quantile(&s.put_blocked, 0.99),
        ),
        (
            "mpqueue_get_blocked_p50_seconds",
            quantile(&s.get_blocked, 0.5),
        ),
        (
            "mpqueue_get_blocked_p99_seconds",
            quantile(&s.get_blocked, 0.99),
        ),
    ] {
        ::metrics::gauge!(name, &l).set(v);
    }
}

/// Reports every queue open in this process, once.
pub fn report() {
    for queue in registry::live() {
        let seg = queue.segments();
        let id = seg
            .stats_path()
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        if let Ok(s) = observe::parse(seg.stats_words(), seg.stats_path(), &id) {
            publish(&s);
        }
    }
}

/// Starts a thread that calls [`report`] every `interval`, for the life of the process.
///
/// # Errors
/// The OS error if the thread cannot be started.
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
