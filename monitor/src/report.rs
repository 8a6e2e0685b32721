//! One-shot output: `--once` (a plain table, like `varnishstat -1`) and `--json` (a
//! document serialized from the `#[derive(Serialize)]` structs below, whose schema
//! `monitor/README.md` documents).

use crate::fmt::{self, escape};
use mpqueue::observe::{self, HistogramSnapshot, Liveness, ProcessSnapshot, Snapshot};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// Every queue of a directory, read once.
#[derive(Debug)]
pub struct Report {
    /// The directory read.
    pub dir: String,
    /// The queues that could be read.
    pub queues: Vec<Snapshot>,
    /// The stats files that could not be read.
    pub errors: Vec<Unreadable>,
}

/// A stats file that could not be read (corrupt, foreign, wrong version, no permission).
#[derive(Debug, Serialize)]
pub struct Unreadable {
    /// Its path.
    pub path: String,
    /// Why.
    pub error: String,
}

impl Report {
    /// Reads every queue in `dir`; one that cannot be read is listed in `errors`.
    ///
    /// # Errors
    /// The directory itself cannot be listed.
    pub fn collect(dir: &Path) -> anyhow::Result<Self> {
        let mut queues = Vec::new();
        let mut errors = Vec::new();
        for q in observe::list_in(dir)? {
            match q.snapshot() {
                Ok(s) => queues.push(s),
                Err(e) => errors.push(Unreadable {
                    path: q.path().display().to_string(),
                    error: e.to_string(),
                }),
            }
        }
        Ok(Report {
            dir: dir.display().to_string(),
            queues,
            errors,
        })
    }

    /// The `--once` table: a header, one line per queue (exact counts, names escaped), then
    /// one line per unreadable file.
    pub fn table(&self) -> String {
        let mut out = String::new();
        table_line(&mut out, TABLE.iter().map(|c| c.title.to_string()));
        for s in &self.queues {
            table_line(&mut out, TABLE.iter().map(|c| (c.cell)(s)));
        }
        for e in &self.errors {
            let _ = writeln!(out, "{} unreadable: {}", escape(&e.path), escape(&e.error));
        }
        out
    }

    /// The `--json` document.
    pub fn json(&self) -> Document<'_> {
        Document {
            dir: &self.dir,
            queues: self.queues.iter().map(QueueJson::from).collect(),
            errors: &self.errors,
        }
    }
}

/// Where a `--once` column's text sits in its width.
enum Align {
    Left,
    Right,
}

/// One column of the `--once` table.
struct TableColumn {
    title: &'static str,
    width: usize,
    align: Align,
    cell: fn(&Snapshot) -> String,
}

/// The `--once` table's columns, left to right.
const TABLE: [TableColumn; 13] = [
    TableColumn::left("NAME", 24, |s| escape(&s.name)),
    TableColumn::left("KIND", 5, |s| {
        (if s.named { "named" } else { "anon" }).into()
    }),
    TableColumn::left("STATE", 7, |s| fmt::queue_state(s).into()),
    TableColumn::right("SIZE", 8, |s| s.size.to_string()),
    TableColumn::right("MAXSIZE", 8, |s| s.maxsize.to_string()),
    TableColumn::right("PUTS", 12, |s| s.puts.to_string()),
    TableColumn::right("GETS", 12, |s| s.gets.to_string()),
    TableColumn::right("FULL", 8, |s| s.full_events.to_string()),
    TableColumn::right("EMPTY", 8, |s| s.empty_events.to_string()),
    TableColumn::right("LOST", 6, |s| s.lost.to_string()),
    TableColumn::right("PUT_P99", 8, |s| p99(&s.put_blocked)),
    TableColumn::right("GET_P99", 8, |s| p99(&s.get_blocked)),
    TableColumn::right("PROCS", 5, |s| s.processes.len().to_string()),
];

impl TableColumn {
    const fn left(title: &'static str, width: usize, cell: fn(&Snapshot) -> String) -> Self {
        TableColumn {
            title,
            width,
            align: Align::Left,
            cell,
        }
    }

    const fn right(title: &'static str, width: usize, cell: fn(&Snapshot) -> String) -> Self {
        TableColumn {
            title,
            width,
            align: Align::Right,
            cell,
        }
    }
}

/// One line of the `--once` table: the cells, each in its column's width, one space apart.
fn table_line(out: &mut String, cells: impl Iterator<Item = String>) {
    let mut sep = "";
    for (c, text) in TABLE.iter().zip(cells) {
        let w = c.width;
        let _ = match c.align {
            Align::Left => write!(out, "{sep}{text:<w$}"),
            Align::Right => write!(out, "{sep}{text:>w$}"),
        };
        sep = " ";
    }
    out.push('\n');
}

/// The 99th percentile of a blocked-time histogram, `-` if nothing blocked.
fn p99(h: &HistogramSnapshot) -> String {
    h.quantile(0.99).map_or("-".into(), fmt::duration)
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// The directory read.
    dir: &'a str,
    /// Every queue that could be read.
    queues: Vec<QueueJson<'a>>,
    /// Every stats file that could not be read.
    errors: &'a [Unreadable],
}

/// One queue in `--json` (the meaning of each field is in `monitor/README.md`).
#[derive(Debug, Serialize)]
pub struct QueueJson<'a> {
    id: &'a str,
    name: &'a str,
    named: bool,
    /// `live`, `stale` or `unknown`.
    state: &'static str,
    maxsize: u64,
    size: u64,
    puts: u64,
    gets: u64,
    bytes_put: u64,
    bytes_got: u64,
    full_events: u64,
    empty_events: u64,
    put_timeouts: u64,
    get_timeouts: u64,
    decode_errors: u64,
    lost: u64,
    frames_discarded: u64,
    lock_recoveries: u64,
    created_by: u32,
    created_unix_ns: u64,
    ring_capacity: u64,
    put_blocked: HistogramJson,
    get_blocked: HistogramJson,
    processes: Vec<ProcessJson>,
}

impl<'a> From<&'a Snapshot> for QueueJson<'a> {
    fn from(s: &'a Snapshot) -> Self {
        QueueJson {
            id: &s.id,
            name: &s.name,
            named: s.named,
            state: fmt::queue_state(s),
            maxsize: s.maxsize,
            size: s.size,
            puts: s.puts,
            gets: s.gets,
            bytes_put: s.bytes_put,
            bytes_got: s.bytes_got,
            full_events: s.full_events,
            empty_events: s.empty_events,
            put_timeouts: s.put_timeouts,
            get_timeouts: s.get_timeouts,
            decode_errors: s.decode_errors,
            lost: s.lost,
            frames_discarded: s.frames_discarded,
            lock_recoveries: s.lock_recoveries,
            created_by: s.created_by,
            created_unix_ns: s.created_unix_ns,
            ring_capacity: s.ring_capacity,
            put_blocked: HistogramJson::from(&s.put_blocked),
            get_blocked: HistogramJson::from(&s.get_blocked),
            processes: s.processes.iter().map(ProcessJson::from).collect(),
        }
    }
}

/// A blocked-time histogram in `--json`.
#[derive(Debug, Serialize)]
pub struct HistogramJson {
    /// Blocked calls.
    count: u64,
    /// Their total time.
    sum_ns: u64,
    /// Every bucket (not cumulative), in order.
    buckets: Vec<BucketJson>,
}

/// One histogram bucket in `--json`.
#[derive(Debug, Serialize)]
pub struct BucketJson {
    /// Upper bound; `null` for the last bucket (+Inf).
    le_ns: Option<u64>,
    /// Calls in this bucket.
    count: u64,
}

impl From<&HistogramSnapshot> for HistogramJson {
    fn from(h: &HistogramSnapshot) -> Self {
        let buckets = HistogramSnapshot::bounds()
            .iter()
            .zip(h.buckets)
            .map(|(&le, count)| BucketJson {
                le_ns: (le != u64::MAX).then_some(le),
                count,
            })
            .collect();
        HistogramJson {
            count: h.count,
            sum_ns: h.sum_ns,
            buckets,
        }
    }
}

/// One attached process in `--json`.
#[derive(Debug, Serialize)]
pub struct ProcessJson {
    pid: u32,
    start_time: u64,
    /// False only if known dead.
    alive: bool,
    /// `alive`, `dead` or `unknown`.
    liveness: &'static str,
    /// `producer`, `consumer`, `both` or `idle`.
    role: &'static str,
    heartbeat_age_ns: Option<u64>,
    buffered_items: u64,
    buffered_bytes: u64,
    puts: u64,
    gets: u64,
    full_events: u64,
    empty_events: u64,
}

impl From<&ProcessSnapshot> for ProcessJson {
    fn from(p: &ProcessSnapshot) -> Self {
        ProcessJson {
            pid: p.pid,
            start_time: p.start_time,
            alive: p.alive,
            liveness: match p.liveness {
                Liveness::Alive => "alive",
                Liveness::Dead => "dead",
                Liveness::Unknown => "unknown",
            },
            role: p.role.as_str(),
            heartbeat_age_ns: p.heartbeat_age.map(|d| d.as_nanos() as u64),
            buffered_items: p.buffered_items,
            buffered_bytes: p.buffered_bytes,
            puts: p.puts,
            gets: p.gets,
            full_events: p.full_events,
            empty_events: p.empty_events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpqueue::observe::Role;
    use serde_json::Value;
    use std::time::Duration;

    fn report() -> Report {
        let mut p = ProcessSnapshot::default();
        p.pid = 42;
        p.alive = true;
        p.liveness = Liveness::Alive;
        p.role = Role::Producer;
        p.heartbeat_age = Some(Duration::from_millis(3));
        p.puts = 7;
        let mut s = Snapshot::default();
        s.id = "q.jobs".into();
        s.name = "jobs\x1b".into();
        s.named = true;
        s.maxsize = 100;
        s.size = 7;
        s.puts = 7;
        s.put_blocked.buckets[2] = 1;
        s.put_blocked.count = 1;
        s.put_blocked.sum_ns = 3000;
        s.processes = vec![p];
        Report {
            dir: "/dev/shm/x".into(),
            queues: vec![s],
            errors: vec![Unreadable {
                path: "/dev/shm/x/q.bad.stats".into(),
                error: "bad magic".into(),
            }],
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn json_has_the_documented_fields() {
        let report = report();
        let doc = serde_json::to_value(report.json()).unwrap();
        assert_eq!(keys(&doc), ["dir", "errors", "queues"]);
        assert_eq!(doc["errors"][0]["path"], "/dev/shm/x/q.bad.stats");
        let q = &doc["queues"][0];
        assert_eq!(
            keys(q),
            [
                "bytes_got",
                "bytes_put",
                "created_by",
                "created_unix_ns",
                "decode_errors",
                "empty_events",
                "frames_discarded",
                "full_events",
                "get_blocked",
                "get_timeouts",
                "gets",
                "id",
                "lock_recoveries",
                "lost",
                "maxsize",
                "name",
                "named",
                "processes",
                "put_blocked",
                "put_timeouts",
                "puts",
                "ring_capacity",
                "size",
                "state",
            ]
        );
        // The name as it is: JSON escapes it.
        assert_eq!(q["name"], "jobs\x1b");
        assert_eq!(q["state"], "live");
        let h = &q["put_blocked"];
        assert_eq!(keys(h), ["buckets", "count", "sum_ns"]);
        let buckets = h["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 28);
        assert_eq!(buckets[0]["le_ns"], 1024);
        assert_eq!(buckets[2]["count"], 1);
        assert_eq!(buckets[27]["le_ns"], Value::Null);
        let p = &q["processes"][0];
        assert_eq!(
            keys(p),
            [
                "alive",
                "buffered_bytes",
                "buffered_items",
                "empty_events",
                "full_events",
                "gets",
                "heartbeat_age_ns",
                "liveness",
                "pid",
                "puts",
                "role",
                "start_time",
            ]
        );
        assert_eq!(p["liveness"], "alive");
        assert_eq!(p["role"], "producer");
        assert_eq!(p["heartbeat_age_ns"], 3_000_000);
    }

    #[test]
    fn the_once_table_lines_up_and_escapes() {
        let table = report().table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "NAME                     KIND  STATE       SIZE  MAXSIZE         PUTS         GETS     FULL    EMPTY   LOST  PUT_P99  GET_P99 PROCS",
                "jobs\\u{1b}               named live           7      100            7            0        0        0      0    4.1µs        -     1",
                "/dev/shm/x/q.bad.stats unreadable: bad magic",
            ]
        );
    }
}
