//! One-shot output: `--once` (a plain table, like `varnishstat -1`) and `--json`.

use crate::fmt::escape;
use mpqueue::observe::{self, HistogramSnapshot, Snapshot};
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::Path;

/// Stats files that could not be read: (path, reason).
pub type Unreadable = Vec<(String, String)>;

/// Every queue in `dir`: the snapshots, and the entries that could not be read.
pub fn collect(dir: &Path) -> anyhow::Result<(Vec<Snapshot>, Unreadable)> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for q in observe::list_in(dir)? {
        match q.snapshot() {
            Ok(s) => ok.push(s),
            Err(e) => bad.push((q.path().display().to_string(), e.to_string())),
        }
    }
    Ok((ok, bad))
}

fn p99(h: &HistogramSnapshot) -> String {
    h.quantile(0.99).map_or("-".into(), crate::fmt::duration)
}

/// The `--once` table: one line per queue, exact counts, names escaped.
pub fn table(snaps: &[Snapshot], errors: &[(String, String)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<5} {:<7} {:>8} {:>8} {:>12} {:>12} {:>8} {:>8} {:>6} {:>8} {:>8} {:>5}",
        "NAME",
        "KIND",
        "STATE",
        "SIZE",
        "MAXSIZE",
        "PUTS",
        "GETS",
        "FULL",
        "EMPTY",
        "LOST",
        "PUT_P99",
        "GET_P99",
        "PROCS"
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "{:<24} {:<5} {:<7} {:>8} {:>8} {:>12} {:>12} {:>8} {:>8} {:>6} {:>8} {:>8} {:>5}",
            escape(&s.name),
            if s.named { "named" } else { "anon" },
            crate::fmt::queue_state(s),
            s.size,
            s.maxsize,
            s.puts,
            s.gets,
            s.full_events,
            s.empty_events,
            s.lost,
            p99(&s.put_blocked),
            p99(&s.get_blocked),
            s.processes.len()
        );
    }
    for (path, e) in errors {
        let _ = writeln!(out, "{} unreadable: {}", escape(path), escape(e));
    }
    out
}

fn hist(h: &HistogramSnapshot) -> Value {
    let buckets: Vec<Value> = HistogramSnapshot::bounds()
        .iter()
        .zip(h.buckets)
        .map(|(le, n)| json!({ "le_ns": if *le == u64::MAX { Value::Null } else { json!(le) }, "count": n }))
        .collect();
    json!({ "count": h.count, "sum_ns": h.sum_ns, "buckets": buckets })
}

/// The `--json` document (schema in `monitor/README.md`).
pub fn json(dir: &Path, snaps: &[Snapshot], errors: &[(String, String)]) -> Value {
    let queues: Vec<Value> = snaps
        .iter()
        .map(|s| {
            let procs: Vec<Value> = s
                .processes
                .iter()
                .map(|p| {
                    json!({
                        "pid": p.pid,
                        "start_time": p.start_time,
                        "alive": p.alive,
                        "liveness": match p.liveness {
                            observe::Liveness::Alive => "alive",
                            observe::Liveness::Dead => "dead",
                            observe::Liveness::Unknown => "unknown",
                        },
                        "role": p.role.as_str(),
                        "heartbeat_age_ns": p.heartbeat_age.map(|d| d.as_nanos() as u64),
                        "buffered_items": p.buffered_items,
                        "buffered_bytes": p.buffered_bytes,
                        "puts": p.puts,
                        "gets": p.gets,
                        "full_events": p.full_events,
                        "empty_events": p.empty_events,
                    })
                })
                .collect();
            json!({
                "id": s.id,
                "name": s.name,
                "named": s.named,
                "state": crate::fmt::queue_state(s),
                "maxsize": s.maxsize,
                "size": s.size,
                "puts": s.puts,
                "gets": s.gets,
                "bytes_put": s.bytes_put,
                "bytes_got": s.bytes_got,
                "full_events": s.full_events,
                "empty_events": s.empty_events,
                "put_timeouts": s.put_timeouts,
                "get_timeouts": s.get_timeouts,
                "decode_errors": s.decode_errors,
                "lost": s.lost,
                "frames_discarded": s.frames_discarded,
                "lock_recoveries": s.lock_recoveries,
                "created_by": s.created_by,
                "created_unix_ns": s.created_unix_ns,
                "ring_capacity": s.ring_capacity,
                "put_blocked": hist(&s.put_blocked),
                "get_blocked": hist(&s.get_blocked),
                "processes": procs,
            })
        })
        .collect();
    let errors: Vec<Value> = errors
        .iter()
        .map(|(p, e)| json!({ "path": p, "error": e }))
        .collect();
    json!({ "dir": dir.display().to_string(), "queues": queues, "errors": errors })
}
