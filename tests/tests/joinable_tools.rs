//! A `JoinableQueue`'s tasks through the tools (issue 14), from queues worked by forked
//! processes: the unfinished count in the real `mpqueue-top` (`--json`, `--once`, the
//! detail view in tmux) and the real `mpqueue-exporter` (`mpqueue_unfinished_tasks`, its
//! page checked by `promtool check metrics`); a consumer killed between `get` and
//! `task_done` shows in `mpqueue_tasks_abandoned_total` once `join` has counted its item
//! done. A plain queue next to them has no task counts at all.

mod support;
use mpqueue::{Child, JoinableQueue, Queue, process};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::prom::{Exporter, check_metrics, page, value};
use support::*;

const LONG: Duration = Duration::from_secs(30);

/// The cell of column `title` in the row of queue `name` of `mpqueue-top --once` (every
/// cell of these tests' rows is one word).
fn once_cell(dir: &Path, name: &str, title: &str) -> String {
    let table = top(&["--once"], dir);
    let column = table
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .position(|t| t == title)
        .unwrap_or_else(|| panic!("no {title} column in\n{table}"));
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in\n{table}"));
    row.split_whitespace().nth(column).unwrap().to_string()
}

fn joinable(dir: &Path, name: &str) -> JoinableQueue<u64> {
    JoinableQueue::from_builder(Queue::builder().name(name).dir(dir)).unwrap()
}

/// A consumer that gets `got` items of `q`, marks `done` of them done, says so on `ready`,
/// and waits (attached) until killed.
fn consumer(q: &JoinableQueue<u64>, got: usize, done: usize, ready: &Queue<u8>) -> Child {
    process::fork(|| {
        die_with_parent();
        for _ in 0..got {
            q.get_timeout(LONG).unwrap();
        }
        for _ in 0..done {
            q.task_done().unwrap();
        }
        ready.put(1).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap()
}

/// In `dir`: the `JoinableQueue` `pool` with 5 items put, of which a live consumer got 3
/// and marked 2 done (3 unfinished), and the plain queue `plain`, whose one item a
/// consumer got before it exited (a get no task count may show as abandoned).
fn pool_and_plain(dir: &Path) -> (JoinableQueue<u64>, Queue<u64>, Workers) {
    let pool = joinable(dir, "pool");
    let plain: Queue<u64> = Queue::builder().name("plain").dir(dir).create().unwrap();
    let ready: Queue<u8> = Queue::builder().dir(dir).create().unwrap();
    plain.put(7).unwrap();
    let plain_consumer = process::fork(|| {
        die_with_parent();
        plain.get_timeout(LONG).unwrap();
        0
    })
    .unwrap();
    assert_eq!(plain_consumer.join().unwrap(), 0);
    for i in 0..5 {
        pool.put(i).unwrap();
    }
    let mut workers = Workers::default();
    workers.0.push(consumer(&pool, 3, 2, &ready));
    ready.get_timeout(LONG).unwrap();
    assert_eq!(pool.unfinished(), 3);
    (pool, plain, workers)
}

#[test]
fn top_shows_the_unfinished_count_of_a_joinable_queue_only() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let (_pool, _plain, _workers) = pool_and_plain(dir.path());

    let pool = json_queue(dir.path(), &[], "pool");
    assert_eq!(pool["unfinished"], 3, "{pool}");
    assert_eq!(pool["tasks_abandoned"], 0, "{pool}");
    assert_eq!((&pool["puts"], &pool["gets"]), (&5.into(), &3.into()));
    let plain = json_queue(dir.path(), &[], "plain");
    assert_eq!(plain["unfinished"], Value::Null, "{plain}");
    assert_eq!(plain["tasks_abandoned"], Value::Null, "{plain}");
    assert_eq!(plain["gets"], 1, "{plain}");

    let table = top(&["--once"], dir.path());
    let head = table.lines().next().unwrap();
    assert!(head.ends_with(" HEALTH      UNFINISHED"), "{table}");
    assert_eq!(once_cell(dir.path(), "pool", "UNFINISHED"), "3");
    assert_eq!(once_cell(dir.path(), "plain", "UNFINISHED"), "-");
}

#[test]
fn the_exporter_has_unfinished_tasks_for_a_joinable_queue_only() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let (_pool, _plain, _workers) = pool_and_plain(dir.path());
    let ex = Exporter::start(dir.path());
    let body = page(&ex);
    let (rc, msg) = check_metrics(&body);
    assert_eq!(rc, 0, "promtool: {msg}\n{body}");
    assert!(
        body.lines()
            .any(|l| l == "mpqueue_unfinished_tasks{queue=\"pool\",named=\"true\",id=\"q.pool\"} 3"),
        "{body}"
    );
    assert_eq!(
        value(&body, "mpqueue_tasks_abandoned_total", "pool"),
        Some(0.0)
    );
    assert!(body.contains("# TYPE mpqueue_unfinished_tasks gauge\n"));
    assert!(body.contains("# TYPE mpqueue_tasks_abandoned_total counter\n"));
    // The plain queue is on the page, without task counts.
    assert_eq!(value(&body, "mpqueue_gets_total", "plain"), Some(1.0));
    assert_eq!(value(&body, "mpqueue_unfinished_tasks", "plain"), None);
    assert_eq!(value(&body, "mpqueue_tasks_abandoned_total", "plain"), None);
}

/// A consumer killed with SIGKILL after `get`, before `task_done`: `join_timeout` returns
/// true (its item counted done), and the exporter and `mpqueue-top` show it as abandoned.
#[test]
fn a_consumer_killed_before_task_done_is_counted_abandoned() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let q = joinable(dir.path(), "crash");
    let ready: Queue<u8> = Queue::builder().dir(dir.path()).create().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let mut workers = Workers::default();
    workers.0.push(consumer(&q, 1, 0, &ready));
    ready.get_timeout(LONG).unwrap();
    // This process does its item's task: only the killed consumer's is left.
    q.get_timeout(LONG).unwrap();
    q.task_done().unwrap();
    let ex = Exporter::start(dir.path());
    let body = page(&ex);
    assert_eq!(value(&body, "mpqueue_unfinished_tasks", "crash"), Some(1.0));
    assert_eq!(
        value(&body, "mpqueue_tasks_abandoned_total", "crash"),
        Some(0.0)
    );
    assert!(!q.join_timeout(Duration::from_millis(100)), "{body}");

    let mut killed = workers.0.pop().unwrap();
    killed.kill(libc::SIGKILL).unwrap();
    assert!(killed.join_timeout(LONG).is_err(), "a signal ended it");
    assert!(q.join_timeout(LONG), "join waited for a dead consumer");

    let body = page(&ex);
    let (rc, msg) = check_metrics(&body);
    assert_eq!(rc, 0, "promtool: {msg}\n{body}");
    assert_eq!(
        value(&body, "mpqueue_tasks_abandoned_total", "crash"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(value(&body, "mpqueue_unfinished_tasks", "crash"), Some(0.0));
    let crash = json_queue(dir.path(), &[], "crash");
    assert_eq!(
        (&crash["unfinished"], &crash["tasks_abandoned"]),
        (&0.into(), &1.into()),
        "{crash}"
    );
}

/// The live dashboard: the detail view of the joinable queue has its tasks line; on a
/// wide terminal the list has an `unfinished` column, which gives way at 80 columns.
#[test]
fn the_dashboard_shows_a_joinable_queues_tasks() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let (_pool, _plain, _workers) = pool_and_plain(dir.path());
    let cmd = format!(
        "{} --dir {} --interval 250ms",
        bin("mpqueue-top").display(),
        dir.path().display()
    );
    let t = Tmux::start(&cmd, 200, 40);
    let screen = t.wait_screen("the list", |s| s.contains("name▲"));
    let head = screen.lines().find(|l| l.contains("name▲")).unwrap();
    assert!(head.contains("unfinished"), "{screen}");
    assert!(head.contains("kind"), "{screen}");
    t.resize(80, 24);
    // Redrawn for 80 columns: without `kind`, which gives way early.
    let narrow = t.wait_screen("the list at 80 columns", |s| {
        s.lines()
            .find(|l| l.contains("name▲"))
            .is_some_and(|h| !h.contains("kind"))
    });
    let head = narrow.lines().find(|l| l.contains("name▲")).unwrap();
    assert!(
        head.contains("health") && !head.contains("unfinished"),
        "{narrow}"
    );

    t.resize(120, 40);
    t.send(&["/", "pool", "Enter", "Enter"]);
    let d = t.wait_screen("detail of pool", |s| s.contains("┌ pool "));
    assert!(d.contains("unfinished 3 · abandoned 0"), "{d}");
    // Back to the list, then the filter edited from `pool` to `plain` (keys sent apart,
    // so that Esc and the next key are never read as one Alt chord).
    t.send(&["Escape"]);
    t.wait_screen("the list again", |s| s.contains("name▲"));
    t.send(&["/"]);
    t.wait_screen("the filter prompt", |s| s.contains("filter: pool"));
    t.send(&[
        "BSpace", "BSpace", "BSpace", "BSpace", "plain", "Enter", "Enter",
    ]);
    let d = t.wait_screen("detail of plain", |s| s.contains("┌ plain "));
    assert!(!d.contains("unfinished"), "{d}");
    t.send(&["q"]);
    t.wait_screen("clean exit", |s| s.contains("EXITED rc=0"));
}
