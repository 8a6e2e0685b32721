//! `mpqueue-top` end to end: the real binary in tmux over real queues with producer and
//! consumer processes; `--once`, `--json` and `--cleanup` against known workloads.

mod support;
use mpqueue::{Child, Queue, process};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

/// Producer and consumer processes on two named queues in `dir`, until killed:
/// `alpha` (maxsize 50) with a slow consumer, so it fills; `beta` (unbounded) steadily.
fn workload(dir: &Path) -> Vec<Child> {
    let alpha: Queue<u64> = Queue::builder()
        .name("alpha")
        .dir(dir)
        .maxsize(50)
        .create()
        .unwrap();
    let beta: Queue<String> = Queue::builder().name("beta").dir(dir).create().unwrap();
    let kids = vec![
        process::fork(|| {
            die_with_parent();
            loop {
                let _ = alpha.put_timeout(1, Duration::from_millis(100));
            }
        })
        .unwrap(),
        process::fork(|| {
            die_with_parent();
            loop {
                if alpha.get_timeout(Duration::from_millis(100)).is_ok() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })
        .unwrap(),
        process::fork(|| {
            die_with_parent();
            loop {
                for _ in 0..100 {
                    beta.put("payload".into()).unwrap();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .unwrap(),
        process::fork(|| {
            die_with_parent();
            loop {
                let _ = beta.get_timeout(Duration::from_millis(100));
            }
        })
        .unwrap(),
    ];
    kids
}

fn stop(kids: Vec<Child>) {
    for k in &kids {
        let _ = k.kill(libc::SIGKILL);
    }
    for mut k in kids {
        let _ = k.wait();
    }
}

fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').starts_with(name))
}

#[test]
fn dashboard_shows_live_queues_and_obeys_keys() {
    let dir = queue_dir();
    let kids = workload(dir.path());
    let top = bin("mpqueue-top");
    let cmd = format!(
        "{} --dir {} --interval 200ms",
        top.display(),
        dir.path().display()
    );
    let t = Tmux::start(&cmd, 130, 40);

    let first = t.wait_screen("both queues listed", |s| {
        row(s, "alpha").is_some() && row(s, "beta").is_some()
    });
    assert!(first.contains("mpqueue-top"));
    assert!(row(&first, "alpha").unwrap().contains("named"));
    // The numbers move: the beta row changes between refreshes.
    let before = row(&first, "beta").unwrap().to_string();
    t.wait_screen("beta's numbers to change", |s| {
        row(s, "beta").is_some_and(|r| r != before)
    });
    // alpha fills up: 50/50 and Full events.
    t.wait_screen("alpha full", |s| {
        row(s, "alpha").is_some_and(|r| r.contains("50/50"))
    });

    // Sort by the next column (size, descending).
    t.send(&["s"]);
    t.wait_screen("sort by size", |s| s.contains("sort: size ▼"));
    // Filter by name.
    t.send(&["/"]);
    t.wait_screen("filter prompt", |s| s.contains("filter: "));
    t.send(&["bet", "Enter"]);
    t.wait_screen("only beta", |s| {
        row(s, "beta").is_some() && row(s, "alpha").is_none()
    });
    // Detail view of the selected (only) queue.
    t.send(&["Enter"]);
    let d = t.wait_screen("detail view", |s| {
        s.contains("processes:") && s.contains("put blocked")
    });
    assert!(d.contains("named · id q.beta"));
    assert!(d.contains("producer") && d.contains("consumer"));
    t.send(&["Escape"]);
    t.wait_screen("back to the list", |s| s.contains("┌ queues"));
    // Help overlay.
    t.send(&["?"]);
    t.wait_screen("help", |s| s.contains("filter by name (Enter keeps it"));
    t.send(&["?"]);
    t.wait_screen("help closed", |s| {
        !s.contains("filter by name (Enter keeps it")
    });
    // Pause.
    t.send(&["p"]);
    t.wait_screen("paused", |s| s.contains("PAUSED"));
    t.send(&["p", "+"]);
    t.wait_screen("resumed, faster", |s| {
        !s.contains("PAUSED") && s.contains("every 100ms")
    });
    // Resize is followed.
    t.resize(100, 30);
    t.wait_screen("redrawn at 100 columns", |s| {
        s.lines()
            .any(|l| l.chars().count() == 100 && l.starts_with('┌'))
    });

    let shell: u32 = t.display("#{pane_pid}").parse().unwrap();
    let tui = children_named(shell, "mpqueue-top");
    assert_eq!(tui.len(), 1, "the dashboard runs in the pane");
    t.send(&["q"]);
    t.wait_screen("clean exit", |s| s.contains("EXITED rc=0"));
    assert_eq!(
        t.display("#{alternate_on}"),
        "0",
        "terminal restored (alternate screen left)"
    );
    assert!(
        wait_for(Duration::from_secs(10), || tui
            .iter()
            .all(|p| !alive(*p))
            .then_some(()))
        .is_some()
    );
    stop(kids);
}

/// `mpqueue-top` over an empty directory in a 100×20 tmux pane, showing its first frame.
fn empty_dashboard() -> (tempfile::TempDir, Tmux) {
    let dir = queue_dir();
    let top = bin("mpqueue-top");
    let t = Tmux::start(
        &format!("{} --dir {}", top.display(), dir.path().display()),
        100,
        20,
    );
    t.wait_screen("empty dashboard", |s| s.contains("no queues yet"));
    (dir, t)
}

#[test]
fn ctrl_c_restores_the_terminal() {
    let (_dir, t) = empty_dashboard();
    assert_eq!(t.display("#{alternate_on}"), "1");
    t.send(&["C-c"]);
    t.wait_screen("exit", |s| s.contains("EXITED rc=0"));
    assert_eq!(t.display("#{alternate_on}"), "0");
}

#[test]
fn terminal_hang_up_ends_the_dashboard() {
    let (_dir, t) = empty_dashboard();
    let shell: u32 = t.display("#{pane_pid}").parse().unwrap();
    let tui = children_named(shell, "mpqueue-top");
    assert_eq!(tui.len(), 1);
    t.hang_up();
    assert!(
        wait_for(Duration::from_secs(10), || (!alive(tui[0])).then_some(())).is_some(),
        "mpqueue-top kept running after its terminal went away"
    );
}

/// `mpqueue-top --demo` in a tmux pane, with the demo's queues in a fresh directory.
fn demo() -> (tempfile::TempDir, Tmux) {
    let dir = queue_dir();
    let top = bin("mpqueue-top");
    let cmd = format!(
        "MPQUEUE_DIR={} {} --demo --interval 300ms",
        dir.path().display(),
        top.display()
    );
    let t = Tmux::start(&cmd, 140, 40);
    (dir, t)
}

/// Pids of every process attached to a queue in `dir`.
fn attached_pids(dir: &Path) -> Vec<u32> {
    json(dir)["queues"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| {
            q["processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pid"].as_u64().unwrap() as u32)
        })
        .collect()
}

#[test]
fn demo_runs_and_leaves_nothing_behind() {
    let (dir, t) = demo();
    t.wait_screen("demo queues", |s| {
        [
            "demo.ingest",
            "demo.orders",
            "demo.stage1",
            "demo.stage2",
            "demo.stage3",
        ]
        .iter()
        .all(|q| row(s, q).is_some())
    });
    // The slow consumer lets the bounded queue fill: Full events are counted.
    wait_for(Duration::from_secs(20), || {
        let v = json(dir.path());
        let orders = v["queues"]
            .as_array()?
            .iter()
            .find(|q| q["name"] == "demo.orders")?
            .clone();
        (orders["full_events"].as_u64()? > 0).then_some(())
    })
    .expect("demo.orders never reported Full events");
    let pids = attached_pids(dir.path());
    assert!(pids.len() >= 8);
    t.send(&["q"]);
    t.wait_screen("demo stopped", |s| s.contains("EXITED rc=0"));
    assert!(
        wait_for(Duration::from_secs(15), || pids
            .iter()
            .all(|p| !alive(*p))
            .then_some(()))
        .is_some(),
        "demo processes left"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "shared memory left behind: {left:?}");
}

#[test]
fn killing_the_dashboard_stops_the_demo_too() {
    let (dir, t) = demo();
    t.wait_screen("demo queues", |s| row(s, "demo.orders").is_some());
    let pids = attached_pids(dir.path());
    assert!(!pids.is_empty());
    let shell: u32 = t.display("#{pane_pid}").parse().unwrap();
    let tui = children_named(shell, "mpqueue-top");
    assert_eq!(tui.len(), 1);
    // SAFETY: kills the dashboard process the test started.
    unsafe { libc::kill(tui[0] as i32, libc::SIGKILL) };
    assert!(
        wait_for(Duration::from_secs(20), || pids
            .iter()
            .all(|p| !alive(*p))
            .then_some(()))
        .is_some(),
        "demo processes outlived the dashboard"
    );
    let left = wait_for(Duration::from_secs(10), || {
        (std::fs::read_dir(dir.path()).unwrap().count() == 0).then_some(())
    });
    assert!(left.is_some(), "the demo left shared memory behind");
}

/// Runs `mpqueue-top FLAG --dir DIR` and returns what it printed.
fn one_shot(flag: &str, dir: &Path) -> String {
    let out = Command::new(bin("mpqueue-top"))
        .args([flag, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path) -> Value {
    serde_json::from_str(&one_shot("--json", dir)).unwrap()
}

fn once(dir: &Path) -> String {
    one_shot("--once", dir)
}

#[test]
fn once_and_json_report_exact_counts() {
    let dir = queue_dir();
    let q: Queue<u32> = Queue::builder()
        .name("known")
        .dir(dir.path())
        .maxsize(5)
        .create()
        .unwrap();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert!(q.put_nowait(5).is_err()); // one Full event
    let child = process::fork(|| {
        q.get().unwrap();
        q.get().unwrap();
        0
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
    let hostile: Queue<u8> = Queue::builder()
        .label("bad\x1b[31mname\n")
        .dir(dir.path())
        .create()
        .unwrap();
    std::fs::write(
        dir.path().join("q.broken.stats"),
        b"not a stats segment, just text....",
    )
    .unwrap();

    let text = once(dir.path());
    let line = text
        .lines()
        .find(|l| l.starts_with("known "))
        .expect("known listed");
    let cols: Vec<&str> = line.split_whitespace().collect();
    // NAME KIND STATE SIZE MAXSIZE PUTS GETS FULL EMPTY LOST PUT_P99 GET_P99 PROCS
    assert_eq!(
        &cols[..10],
        ["known", "named", "live", "3", "5", "5", "2", "1", "0", "0"]
    );
    assert_eq!(cols[12], "1", "the child detached; the parent is attached");
    assert!(text.contains("bad\\u{1b}[31mname\\u{a}"), "{text}");
    assert!(!text.contains('\x1b'));
    assert!(text.contains("q.broken.stats unreadable:"));

    let v = json(dir.path());
    let known = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "known")
        .unwrap();
    for (k, want) in [
        ("size", 3),
        ("maxsize", 5),
        ("puts", 5),
        ("gets", 2),
        ("full_events", 1),
        ("lost", 0),
    ] {
        assert_eq!(known[k].as_u64(), Some(want), "{k}");
    }
    assert_eq!(known["named"], true);
    assert_eq!(known["state"], "live");
    assert_eq!(
        known["put_blocked"]["buckets"].as_array().unwrap().len(),
        28
    );
    let procs = known["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(
        procs[0]["pid"].as_u64(),
        Some(u64::from(std::process::id()))
    );
    assert_eq!(procs[0]["role"], "producer");
    assert_eq!(v["errors"].as_array().unwrap().len(), 1);
    drop(hostile);
}

#[test]
fn cleanup_removes_stale_segments() {
    let dir = queue_dir();
    let d = dir.path().to_path_buf();
    let child = process::fork(move || {
        let q: Queue<u8> = Queue::builder().name("gone").dir(&d).create().unwrap();
        std::mem::forget(q);
        // SAFETY: dies without clean-up, as a crash would.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        0
    })
    .unwrap();
    assert!(child.join().is_err());
    let live: Queue<u8> = Queue::builder()
        .name("kept")
        .dir(dir.path())
        .create()
        .unwrap();
    assert!(
        once(dir.path())
            .lines()
            .any(|l| l.starts_with("gone ") && l.contains("stale"))
    );
    let out = Command::new(bin("mpqueue-top"))
        .args(["--cleanup", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.contains("q.gone.stats") && said.contains("q.gone.data"),
        "{said}"
    );
    assert!(!said.contains("kept"));
    let text = once(dir.path());
    assert!(!text.contains("gone") && text.contains("kept"));
    drop(live);
}

#[test]
fn bad_flags_get_clear_errors() {
    let out = Command::new(bin("mpqueue-top"))
        .args(["--interval", "fast"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));
    let out = Command::new(bin("mpqueue-top"))
        .args(["--once", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(bin("mpqueue-top"))
        .args(["--once", "--dir", "/nonexistent/mpq"])
        .output()
        .unwrap();
    assert!(out.status.success(), "a missing directory is just empty");
}
