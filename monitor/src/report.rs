//! One-shot output: `--once` (a plain table, like `varnishstat -1`) and `--json` (a
//! document serialized from the `#[derive(Serialize)]` structs below, whose schema
//! `monitor/README.md` documents).
//!
//! Each queue is read once, so its health is judged from that one snapshot
//! (`Snapshot::health_with`): every verdict but `lagging`, which needs snapshots over a
//! window (the live dashboard keeps them).

use crate::fmt::{self, escape};
use mpqueue::observe::{
    self, Health, HealthRules, HistogramSnapshot, Liveness, ProcessSnapshot, Snapshot,
};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

/// Every queue of a directory, read once.
#[derive(Debug)]
pub struct Report {
    /// The directory read.
    pub dir: String,
    /// The queues that could be read.
    pub queues: Vec<Judged>,
    /// The stats files that could not be read.
    pub errors: Vec<Unreadable>,
}

/// A queue read, and the verdict on it.
#[derive(Debug)]
pub struct Judged {
    /// What was read.
    pub snapshot: Snapshot,
    /// Its health, from this snapshot alone.
    pub health: Health,
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
    /// Reads every queue in `dir` and judges its health by `rules`; one that cannot be
    /// read is listed in `errors`.
    ///
    /// # Errors
    /// The directory itself cannot be listed.
    pub fn collect(dir: &Path, rules: &HealthRules) -> anyhow::Result<Self> {
        let mut queues = Vec::new();
        let mut errors = Vec::new();
        for q in observe::list_in(dir)? {
            match q.snapshot() {
                Ok(snapshot) => queues.push(Judged {
                    health: snapshot.health_with(rules),
                    snapshot,
                }),
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
        for q in &self.queues {
            table_line(
                &mut out,
                TABLE.iter().map(|c| (c.cell)(&q.snapshot, q.health)),
            );
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
    cell: Cell,
}

/// A `--once` cell's text, from a queue's snapshot and health.
type Cell = fn(&Snapshot, Health) -> String;

/// The `--once` table's columns, left to right (newer ones go at the end, so that scripts
/// reading the columns by position keep working).
const TABLE: [TableColumn; 18] = [
    TableColumn::left("NAME", 24, |s, _| escape(&s.name)),
    TableColumn::left("KIND", 5, |s, _| {
        (if s.named { "named" } else { "anon" }).into()
    }),
    TableColumn::left("STATE", 7, |s, _| fmt::queue_state(s).into()),
    TableColumn::right("SIZE", 8, |s, _| s.size.to_string()),
    TableColumn::right("MAXSIZE", 8, |s, _| s.maxsize.to_string()),
    TableColumn::right("PUTS", 12, |s, _| s.puts.to_string()),
    TableColumn::right("GETS", 12, |s, _| s.gets.to_string()),
    TableColumn::right("FULL", 8, |s, _| s.full_events.to_string()),
    TableColumn::right("EMPTY", 8, |s, _| s.empty_events.to_string()),
    TableColumn::right("LOST", 6, |s, _| s.lost.to_string()),
    TableColumn::right("PUT_P99", 8, |s, _| p99(&s.put_blocked)),
    TableColumn::right("GET_P99", 8, |s, _| p99(&s.get_blocked)),
    TableColumn::right("PROCS", 5, |s, _| s.processes.len().to_string()),
    TableColumn::right("WAIT_P99", 8, |s, _| p99(&s.wait)),
    TableColumn::right("OLDEST", 8, |s, _| age(s.oldest_age)),
    TableColumn::right("LAST_GET", 8, |s, _| age(s.last_get_age)),
    TableColumn::left("HEALTH", 11, |_, h| h.as_str().into()),
    // A `JoinableQueue`'s items not yet marked done; `-` for other queues.
    TableColumn::right("UNFINISHED", 10, |s, _| {
        s.unfinished.map_or("-".into(), |n| n.to_string())
    }),
];

impl TableColumn {
    const fn left(title: &'static str, width: usize, cell: Cell) -> Self {
        TableColumn {
            title,
            width,
            align: Align::Left,
            cell,
        }
    }

    const fn right(title: &'static str, width: usize, cell: Cell) -> Self {
        TableColumn {
            title,
            width,
            align: Align::Right,
            cell,
        }
    }
}

/// One line of the `--once` table: the cells, each in its column's width, one space apart,
/// without trailing blanks.
fn table_line(out: &mut String, cells: impl Iterator<Item = String>) {
    let mut line = String::new();
    let mut sep = "";
    for (c, text) in TABLE.iter().zip(cells) {
        let w = c.width;
        let _ = match c.align {
            Align::Left => write!(line, "{sep}{text:<w$}"),
            Align::Right => write!(line, "{sep}{text:>w$}"),
        };
        sep = " ";
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The 99th percentile of a histogram, `-` if it is empty.
fn p99(h: &HistogramSnapshot) -> String {
    h.quantile(0.99).map_or("-".into(), fmt::duration)
}

/// An age, `-` if there is none (an empty queue's oldest item, a get that never was).
fn age(d: Option<Duration>) -> String {
    d.map_or("-".into(), fmt::duration)
}

/// An age in nanoseconds for `--json` (`null` if none).
fn ns(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
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
    /// `no_consumer`, `stalled`, `lagging`, `idle` or `ok`.
    health: &'static str,
    maxsize: u64,
    size: u64,
    buffered_items: u64,
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
    oldest_age_ns: Option<u64>,
    last_get_age_ns: Option<u64>,
    last_put_age_ns: Option<u64>,
    wait: HistogramJson,
    put_blocked: HistogramJson,
    get_blocked: HistogramJson,
    processes: Vec<ProcessJson>,
    /// `JoinableQueue` only (`null` for other queues): items not yet marked done.
    unfinished: Option<u64>,
    /// `JoinableQueue` only (`null` for other queues): items got and never marked done by
    /// processes that went.
    tasks_abandoned: Option<u64>,
}

impl<'a> From<&'a Judged> for QueueJson<'a> {
    fn from(q: &'a Judged) -> Self {
        let s = &q.snapshot;
        QueueJson {
            id: &s.id,
            name: &s.name,
            named: s.named,
            state: fmt::queue_state(s),
            health: q.health.as_str(),
            maxsize: s.maxsize,
            size: s.size,
            buffered_items: s.buffered_items,
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
            oldest_age_ns: ns(s.oldest_age),
            last_get_age_ns: ns(s.last_get_age),
            last_put_age_ns: ns(s.last_put_age),
            wait: HistogramJson::from(&s.wait),
            put_blocked: HistogramJson::from(&s.put_blocked),
            get_blocked: HistogramJson::from(&s.get_blocked),
            processes: s.processes.iter().map(ProcessJson::from).collect(),
            unfinished: s.unfinished,
            // A plain queue's departed consumers never mark anything done: their gets are
            // no tasks abandoned.
            tasks_abandoned: s.unfinished.map(|_| s.tasks_abandoned),
        }
    }
}

/// A histogram in `--json`: time in queue, or time blocked.
#[derive(Debug, Serialize)]
pub struct HistogramJson {
    /// Observations (items measured, or blocked calls).
    count: u64,
    /// Their total time.
    sum_ns: u64,
    /// Quantiles, as the upper bound of the bucket they fall in; `null` if empty.
    p50_ns: Option<u64>,
    p90_ns: Option<u64>,
    p99_ns: Option<u64>,
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
            p50_ns: ns(h.quantile(0.5)),
            p90_ns: ns(h.quantile(0.9)),
            p99_ns: ns(h.quantile(0.99)),
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
    last_put_age_ns: Option<u64>,
    last_get_age_ns: Option<u64>,
    buffered_items: u64,
    /// Age of the oldest item in its feeder buffer.
    buffered_age_ns: Option<u64>,
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
            heartbeat_age_ns: ns(p.heartbeat_age),
            last_put_age_ns: ns(p.last_put_age),
            last_get_age_ns: ns(p.last_get_age),
            buffered_items: p.buffered_items,
            buffered_age_ns: ns(p.buffered_age),
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

    /// A queue with a producer and items waiting for 12 s, which nobody has ever got:
    /// `no_consumer`.
    fn report() -> Report {
        let mut p = ProcessSnapshot::default();
        p.pid = 42;
        p.alive = true;
        p.liveness = Liveness::Alive;
        p.role = Role::Producer;
        p.heartbeat_age = Some(Duration::from_millis(3));
        p.last_put_age = Some(Duration::from_millis(3));
        p.buffered_items = 2;
        p.buffered_age = Some(Duration::from_millis(40));
        p.puts = 7;
        let mut s = Snapshot::default();
        s.id = "q.jobs".into();
        s.name = "jobs\x1b".into();
        s.named = true;
        s.maxsize = 100;
        s.size = 7;
        s.buffered_items = 2;
        s.puts = 7;
        s.put_blocked.buckets[2] = 1;
        s.put_blocked.count = 1;
        s.put_blocked.sum_ns = 3000;
        s.wait.buckets[0] = 3;
        s.wait.count = 3;
        s.wait.sum_ns = 1500;
        s.oldest_age = Some(Duration::from_secs(12));
        s.last_put_age = Some(Duration::from_millis(3));
        s.processes = vec![p];
        Report {
            dir: "/dev/shm/x".into(),
            queues: vec![Judged {
                health: s.health_with(&HealthRules::default()),
                snapshot: s,
            }],
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
                "buffered_items",
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
                "health",
                "id",
                "last_get_age_ns",
                "last_put_age_ns",
                "lock_recoveries",
                "lost",
                "maxsize",
                "name",
                "named",
                "oldest_age_ns",
                "processes",
                "put_blocked",
                "put_timeouts",
                "puts",
                "ring_capacity",
                "size",
                "state",
                "tasks_abandoned",
                "unfinished",
                "wait",
            ]
        );
        // The name as it is: JSON escapes it.
        assert_eq!(q["name"], "jobs\x1b");
        assert_eq!(q["state"], "live");
        assert_eq!(q["health"], "no_consumer");
        assert_eq!(q["buffered_items"], 2);
        assert_eq!(q["oldest_age_ns"], 12_000_000_000_u64);
        assert_eq!(q["last_get_age_ns"], Value::Null);
        assert_eq!(q["last_put_age_ns"], 3_000_000);
        // Not a `JoinableQueue`: no task counts.
        assert_eq!(q["unfinished"], Value::Null);
        assert_eq!(q["tasks_abandoned"], Value::Null);
        let h = &q["put_blocked"];
        assert_eq!(
            keys(h),
            ["buckets", "count", "p50_ns", "p90_ns", "p99_ns", "sum_ns"]
        );
        let buckets = h["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 28);
        assert_eq!(buckets[0]["le_ns"], 1024);
        assert_eq!(buckets[2]["count"], 1);
        assert_eq!(buckets[27]["le_ns"], Value::Null);
        assert_eq!(h["p99_ns"], 4096);
        assert_eq!(q["get_blocked"]["p50_ns"], Value::Null);
        let w = &q["wait"];
        assert_eq!(
            (&w["count"], &w["sum_ns"]),
            (&Value::from(3), &Value::from(1500))
        );
        assert_eq!(
            (&w["p50_ns"], &w["p99_ns"]),
            (&Value::from(1024), &Value::from(1024))
        );
        assert_eq!(w["buckets"][0]["count"], 3);
        let p = &q["processes"][0];
        assert_eq!(
            keys(p),
            [
                "alive",
                "buffered_age_ns",
                "buffered_bytes",
                "buffered_items",
                "empty_events",
                "full_events",
                "gets",
                "heartbeat_age_ns",
                "last_get_age_ns",
                "last_put_age_ns",
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
        assert_eq!(p["last_put_age_ns"], 3_000_000);
        assert_eq!(p["last_get_age_ns"], Value::Null);
        assert_eq!(p["buffered_age_ns"], 40_000_000);
    }

    /// The keys of the object at the top of `json`, in the order they are written.
    fn written_keys(json: &str) -> Vec<String> {
        let (mut depth, mut keys, mut in_str, mut start) = (0, Vec::new(), false, 0);
        let bytes = json.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if in_str => i += 1,
                b'"' if in_str => {
                    in_str = false;
                    if depth == 1 && bytes.get(i + 1) == Some(&b':') {
                        keys.push(json[start..i].to_string());
                    }
                }
                b'"' => (in_str, start) = (true, i + 1),
                b'{' | b'[' if !in_str => depth += 1,
                b'}' | b']' if !in_str => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        keys
    }

    /// The names in backquotes in the first cell of each row of the queue table and of the
    /// process table in `monitor/README.md`'s `--json` section.
    fn documented_keys() -> (Vec<String>, Vec<String>) {
        let readme = include_str!("../README.md");
        let section = &readme[readme.find("## `--json` schema").unwrap() + 3..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        let (queue, process) = section.split_once("Each process:").unwrap();
        let names = |table: &str| -> Vec<String> {
            table
                .lines()
                .filter(|l| l.starts_with("| `"))
                .flat_map(|l| {
                    let first = l.split('|').nth(1).unwrap_or("");
                    first
                        .split('`')
                        .skip(1)
                        .step_by(2)
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        (names(queue), names(process))
    }

    #[test]
    fn json_keys_are_written_in_the_documented_order() {
        let report = report();
        let q = serde_json::to_string(&QueueJson::from(&report.queues[0])).unwrap();
        let p = serde_json::to_string(&ProcessJson::from(&report.queues[0].snapshot.processes[0]))
            .unwrap();
        let (queue, process) = documented_keys();
        assert_eq!(written_keys(&q), queue);
        assert_eq!(written_keys(&p), process);
    }

    /// [`report`] with a `JoinableQueue` after the plain queue: `pool`, 12 items not yet
    /// done, 1 abandoned.
    fn with_joinable() -> Report {
        let mut report = report();
        let mut s = report.queues[0].snapshot.clone();
        s.id = "q.pool".into();
        s.name = "pool".into();
        s.unfinished = Some(12);
        s.tasks_abandoned = 1;
        report.queues.push(Judged {
            health: s.health_with(&HealthRules::default()),
            snapshot: s,
        });
        report
    }

    #[test]
    fn json_has_task_counts_for_joinable_queues_only() {
        let mut report = with_joinable();
        // A plain queue whose departed consumers' gets were never marked done.
        report.queues[0].snapshot.tasks_abandoned = 5;
        let doc = serde_json::to_value(report.json()).unwrap();
        let (plain, pool) = (&doc["queues"][0], &doc["queues"][1]);
        assert_eq!(
            (&plain["unfinished"], &plain["tasks_abandoned"]),
            (&Value::Null, &Value::Null)
        );
        assert_eq!(
            (&pool["unfinished"], &pool["tasks_abandoned"]),
            (&Value::from(12), &Value::from(1))
        );
    }

    #[test]
    fn the_once_table_lines_up_and_escapes() {
        let table = with_joinable().table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "NAME                     KIND  STATE       SIZE  MAXSIZE         PUTS         GETS     FULL    EMPTY   LOST  PUT_P99  GET_P99 PROCS WAIT_P99   OLDEST LAST_GET HEALTH      UNFINISHED",
                "jobs\\u{1b}               named live           7      100            7            0        0        0      0    4.1µs        -     1    1.0µs    12.0s        - no_consumer          -",
                "pool                     named live           7      100            7            0        0        0      0    4.1µs        -     1    1.0µs    12.0s        - no_consumer         12",
                "/dev/shm/x/q.bad.stats unreadable: bad magic",
            ]
        );
    }
}
