//! `mpqueue-top`'s health verdicts end to end (issue 13), each from a real workload of
//! forked processes: a consumer stopped with SIGSTOP is `stalled` (with `--stall-after
//! 2s`) and `ok` again after SIGCONT, a killed one leaves `no_consumer`, an empty queue is
//! `idle`: in `--json` and in `--once`. A consumer slower than its producer is `lagging`
//! in the live dashboard (tmux), which judges over a window of refreshes; the one-shot
//! modes read each queue once and cannot tell lagging (monitor/README.md says so). The
//! dashboard shows the new columns, stuck queues first, and health in colour.

mod support;
use mpqueue::{Child, Queue, process};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const LONG: Duration = Duration::from_secs(30);

/// A process putting one item every `every` until killed.
fn producing(q: &Queue<u64>, every: Duration) -> Child {
    process::fork(|| {
        die_with_parent();
        for i in 0.. {
            q.put(i).unwrap();
            std::thread::sleep(every);
        }
        0
    })
    .unwrap()
}

/// A process taking one item every `every` until killed.
fn consuming(q: &Queue<u64>, every: Duration) -> Child {
    process::fork(|| {
        die_with_parent();
        loop {
            let _ = q.get_timeout(Duration::from_secs(1));
            std::thread::sleep(every);
        }
    })
    .unwrap()
}

/// Kills and reaps `children` (continuing stopped ones, so that they can die).
fn stop(children: Vec<Child>) {
    for mut c in children {
        let _ = c.kill(libc::SIGKILL);
        let _ = c.kill(libc::SIGCONT);
        let _ = c.join_timeout(LONG);
    }
}

/// The HEALTH column of the queue `name` in `mpqueue-top --once ARGS` (every cell of these
/// tests' rows is one word, so the column's place among the titles is its place in a row).
fn once_health(dir: &Path, args: &[&str], name: &str) -> String {
    let mut all = vec!["--once"];
    all.extend_from_slice(args);
    let table = top(&all, dir);
    assert!(table.starts_with("NAME "), "{table}");
    let column = table
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .position(|t| t == "HEALTH")
        .unwrap_or_else(|| panic!("no HEALTH column in\n{table}"));
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in\n{table}"));
    line.split_whitespace().nth(column).unwrap().to_string()
}

/// Polls `--json ARGS` until the queue's health is `want`; the queue as then read.
fn until_json(dir: &Path, args: &[&str], name: &str, want: &str) -> Value {
    let mut last = Value::Null;
    wait_for(LONG, || {
        last = json_queue(dir, args, name);
        (last["health"] == want).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("{name} never {want}; last read: {last}"))
}

/// Polls `--once ARGS` until the queue's health is `want`.
fn until_once(dir: &Path, args: &[&str], name: &str, want: &str) {
    let mut last = String::new();
    let seen = wait_for(LONG, || {
        last = once_health(dir, args, name);
        (last == want).then_some(())
    });
    assert!(seen.is_some(), "{name} never {want} in --once: last {last}");
}

fn age(q: &Value, key: &str) -> Option<Duration> {
    q[key].as_u64().map(Duration::from_nanos)
}

#[test]
fn a_stopped_consumer_stalls_a_killed_one_leaves_no_consumer_in_json_and_once() {
    let dir = queue_dir();
    let name = "work";
    let two = ["--stall-after", "2s"];
    let q: Queue<u64> = Queue::builder()
        .name(name)
        .dir(dir.path())
        .create()
        .unwrap();
    let producer = producing(&q, Duration::from_millis(10));
    let mut consumer = consuming(&q, Duration::ZERO);
    until_json(dir.path(), &two, name, "ok");
    until_once(dir.path(), &two, name, "ok");

    // Stopped just after it got an item.
    let gets = json_queue(dir.path(), &two, name)["gets"].as_u64().unwrap();
    wait_for(LONG, || {
        (json_queue(dir.path(), &two, name)["gets"].as_u64()? > gets).then_some(())
    })
    .expect("the consumer never got an item");
    consumer.kill(libc::SIGSTOP).unwrap();
    let stopped = Instant::now();
    // Every read until the verdict turns says why: `stalled` exactly when the last get
    // and the oldest item are 2 s old or more (a consumer lives, items wait).
    let stalled = wait_for(LONG, || {
        let q = json_queue(dir.path(), &two, name);
        let (last_get, oldest) = (age(&q, "last_get_age_ns")?, age(&q, "oldest_age_ns")?);
        let due = last_get >= Duration::from_secs(2) && oldest >= Duration::from_secs(2);
        assert_eq!(q["health"] == "stalled", due, "{q}");
        due.then_some(q)
    })
    .expect("the stopped consumer's queue never stalled");
    assert!(stopped.elapsed() >= Duration::from_secs(2));
    assert!(stalled["size"].as_u64().unwrap() > 0, "{stalled}");
    until_once(dir.path(), &two, name, "stalled");
    // The default threshold, 10 s, has not passed yet.
    let q = json_queue(dir.path(), &[], name);
    if age(&q, "last_get_age_ns").unwrap() < Duration::from_secs(9) {
        assert_eq!(q["health"], "ok", "{q}");
    }
    // The consumer's own last get is as old.
    let pid = u64::from(consumer.pid());
    let p = stalled["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap();
    assert!(
        age(p, "last_get_age_ns").unwrap() >= Duration::from_secs(2),
        "{p}"
    );

    consumer.kill(libc::SIGCONT).unwrap();
    until_json(dir.path(), &two, name, "ok");
    until_once(dir.path(), &two, name, "ok");

    consumer.kill(libc::SIGKILL).unwrap();
    let _ = consumer.join_timeout(LONG);
    let q = until_json(dir.path(), &two, name, "no_consumer");
    assert!(q["size"].as_u64().unwrap() > 0, "{q}");
    until_once(dir.path(), &two, name, "no_consumer");
    // Whatever the threshold: nobody takes the items.
    until_once(dir.path(), &[], name, "no_consumer");
    stop(vec![producer]);
}

#[test]
fn an_empty_queue_is_idle_in_json_and_once() {
    let dir = queue_dir();
    let _q: Queue<u64> = Queue::builder()
        .name("quiet")
        .dir(dir.path())
        .create()
        .unwrap();
    let q = json_queue(dir.path(), &[], "quiet");
    assert_eq!(q["health"], "idle", "{q}");
    assert_eq!(q["size"], 0);
    assert_eq!(q["oldest_age_ns"], Value::Null);
    assert_eq!(q["last_get_age_ns"], Value::Null);
    assert_eq!(q["wait"]["count"], 0);
    assert_eq!(
        once_health(dir.path(), &["--stall-after", "2s"], "quiet"),
        "idle"
    );
}

#[test]
fn the_wait_histogram_and_ages_reach_json() {
    let dir = queue_dir();
    let q: Queue<u64> = Queue::builder()
        .name("timed")
        .dir(dir.path())
        .create()
        .unwrap();
    // Every 16th item of a producer is timed: 32 items, each waiting at least 50 ms.
    for i in 0..32 {
        q.put(i).unwrap();
    }
    // The time they wait (what is measured, not a synchronisation).
    std::thread::sleep(Duration::from_millis(50));
    let mut consumer = process::fork(|| {
        for _ in 0..30 {
            q.get().unwrap();
        }
        0
    })
    .unwrap();
    assert_eq!(consumer.join_timeout(LONG).unwrap(), Some(0));
    let v = json_queue(dir.path(), &[], "timed");
    let wait = &v["wait"];
    assert!(wait["count"].as_u64().unwrap() >= 1, "{wait}");
    assert!(wait["p50_ns"].as_u64().unwrap() >= 50_000_000, "{wait}");
    assert!(wait["p99_ns"].as_u64() >= wait["p50_ns"].as_u64(), "{wait}");
    assert_eq!(v["size"], 2);
    assert!(
        age(&v, "oldest_age_ns").unwrap() >= Duration::from_millis(50),
        "{v}"
    );
    assert!(age(&v, "last_get_age_ns").is_some() && age(&v, "last_put_age_ns").is_some());
    // This process put them; the child that got them has detached.
    let me = u64::from(std::process::id());
    let procs = v["processes"].as_array().unwrap();
    let p = procs.iter().find(|p| p["pid"] == me).unwrap();
    assert!(
        age(p, "last_put_age_ns").is_some() && p["last_get_age_ns"].is_null(),
        "{p}"
    );
    // Some items wait: its health is not idle, and nobody takes them.
    assert_eq!(v["health"], "no_consumer", "{v}");
}

/// The foreground colour (an SGR palette index: 1 red, 2 green, 3 yellow, 8 dark grey) in
/// force where `word` starts in `line`, a line of `tmux capture-pane -e`.
fn colour_at(line: &str, word: &str) -> Option<u8> {
    let end = line.find(word)?;
    let mut fg = None;
    let mut rest = &line[..end];
    while let Some(i) = rest.find("\x1b[") {
        let seq = &rest[i + 2..];
        let Some(m) = seq.find(|c: char| !(c.is_ascii_digit() || c == ';')) else {
            break;
        };
        let params: Vec<u16> = seq[..m]
            .split(';')
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        let mut it = params.iter();
        while let Some(&p) = it.next() {
            fg = match p {
                0 | 39 => None,
                30..=37 => Some((p - 30) as u8),
                90..=97 => Some((p - 90 + 8) as u8),
                38 => match (it.next(), it.next()) {
                    (Some(5), Some(&n)) => Some(n as u8),
                    _ => fg,
                },
                _ => fg,
            };
        }
        rest = &seq[m..];
    }
    fg
}

/// The screen of `t` with its colours (`capture-pane -e`).
fn coloured_screen(t: &Tmux) -> String {
    let out = Command::new("tmux")
        .args(["-L", &t.name, "capture-pane", "-p", "-e", "-t", &t.name])
        .env_remove("TMUX")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The screen's row of queue `name`.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').starts_with(name))
}

#[test]
fn the_dashboard_shows_lagging_stuck_first_and_in_colour() {
    let dir = queue_dir();
    // Lagging: a consumer at half its producer's pace.
    let lag: Queue<u64> = Queue::builder()
        .name("lag")
        .dir(dir.path())
        .create()
        .unwrap();
    let kids = vec![
        producing(&lag, Duration::from_millis(5)),
        consuming(&lag, Duration::from_millis(10)),
    ];
    // No consumer: items from this process that nobody takes.
    let orphan: Queue<u64> = Queue::builder()
        .name("orphan")
        .dir(dir.path())
        .create()
        .unwrap();
    orphan.put(1).unwrap();
    // Idle: never used.
    let _quiet: Queue<u64> = Queue::builder()
        .name("quiet")
        .dir(dir.path())
        .create()
        .unwrap();
    let cmd = format!(
        "{} --dir {} --interval 250ms",
        bin("mpqueue-top").display(),
        dir.path().display()
    );
    let t = Tmux::start(&cmd, 80, 24);
    // Lagging needs half a window (5 s) of refreshes; wait_screen allows 20 s.
    let screen = t.wait_screen("lag lagging", |s| {
        row(s, "lag").is_some_and(|r| r.contains("lagging"))
    });
    // The new columns fit in 80 columns.
    let head = screen.lines().find(|l| l.contains("name▲")).unwrap();
    for col in ["health", "size/max", "oldest", "wait p50/99"] {
        assert!(head.contains(col), "{head}");
    }
    assert!(screen.contains("1 stuck"), "{screen}");
    // Stuck first, whatever the sort: the first row (under the border and the titles).
    let rows: Vec<&str> = screen.lines().skip(3).take(3).collect();
    assert!(
        rows[0].contains("orphan") && rows[0].contains("no_consumer"),
        "{screen}"
    );
    assert!(row(&screen, "quiet").unwrap().contains("idle"), "{screen}");
    // The lagging queue's oldest item and wait are shown.
    let lag_row = row(&screen, "lag").unwrap();
    assert!(
        lag_row.contains("ms/") || lag_row.contains("s/"),
        "{lag_row}"
    );

    let coloured = coloured_screen(&t);
    let colour = |name: &str, verdict: &str| {
        let line = coloured
            .lines()
            .find(|l| l.contains(name) && l.contains(verdict))
            .unwrap_or_else(|| panic!("{name} {verdict} not in\n{coloured}"));
        colour_at(line, verdict)
    };
    assert_eq!(colour("orphan", "no_consumer"), Some(1), "red");
    assert_eq!(colour("quiet", "idle"), Some(8), "dim");
    // Lagging shows in yellow (polled again: the verdict may have wobbled back to ok
    // between the two captures).
    let lagging = wait_for(LONG, || {
        let coloured = coloured_screen(&t);
        let line = coloured
            .lines()
            .find(|l| l.contains("lag ") && l.contains("lagging"))?;
        colour_at(line, "lagging")
    });
    assert_eq!(lagging, Some(3), "yellow");

    // The detail view of the lagging queue: the wait histogram and the oldest sparkline.
    t.resize(120, 40);
    t.send(&["/", "lag", "Enter", "Enter"]);
    let d = t.wait_screen("detail of lag", |s| s.contains("┌ lag "));
    assert!(
        d.contains("wait (time in queue)") && d.contains("oldest"),
        "{d}"
    );
    assert!(d.contains("health "), "{d}");
    t.send(&["q"]);
    t.wait_screen("clean exit", |s| s.contains("EXITED rc=0"));
    stop(kids);
}

#[test]
fn stall_after_takes_the_exporters_syntax() {
    let dir = queue_dir();
    for (arg, error) in [("10", "no unit"), ("0s", "zero"), ("soon", "soon")] {
        let out = Command::new(bin("mpqueue-top"))
            .args(["--once", "--stall-after", arg, "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains(error),
            "{arg}: {said}"
        );
    }
    for arg in ["1.5s", "500ms", "2m", "1h"] {
        top(&["--once", "--stall-after", arg], dir.path());
    }
}
