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

    // Sort by the column after the next (health, then size, descending).
    t.send(&["s", "s"]);
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

/// The demo queue `name` in the `--json` document of `dir`.
fn demo_queue(dir: &Path, name: &str) -> Option<Value> {
    json(dir)["queues"]
        .as_array()?
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
}

/// Files left in `dir`.
fn files_in(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect()
}

/// Waits for the demo processes `pids` to end and for `dir` to be empty.
fn demo_gone(dir: &Path, pids: &[u32]) {
    assert!(
        wait_for(Duration::from_secs(15), || pids
            .iter()
            .all(|p| !alive(*p))
            .then_some(()))
        .is_some(),
        "demo processes left"
    );
    assert!(
        wait_for(Duration::from_secs(10), || files_in(dir)
            .is_empty()
            .then_some(()))
        .is_some(),
        "shared memory left behind: {:?}",
        files_in(dir)
    );
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
        let orders = demo_queue(dir.path(), "demo.orders")?;
        (orders["full_events"].as_u64()? > 0).then_some(())
    })
    .expect("demo.orders never reported Full events");
    // A person quits whenever they like, say after 8 s. The test used to quit within the
    // first second, while the first burst was still queued in demo.ingest: the one phase
    // in which every worker stopped at once. Quit when the consumer has caught up instead
    // and waits on an empty queue, as it does for part of every burst cycle.
    wait_for(Duration::from_secs(30), || {
        let ingest = demo_queue(dir.path(), "demo.ingest")?;
        (ingest["puts"].as_u64()? > 0 && ingest["size"].as_u64()? == 0).then_some(())
    })
    .expect("demo.ingest was never drained");
    let pids = attached_pids(dir.path());
    assert!(pids.len() >= 8);
    let shell: u32 = t.display("#{pane_pid}").parse().unwrap();
    let tui = children_named(shell, "mpqueue-top");
    assert_eq!(tui.len(), 1, "the dashboard runs in the pane");
    t.send(&["q"]);
    // Until it has exited, the dashboard keeps the screen and says what it waits for: a
    // restored terminal with the dashboard still running (its children slow to stop) would
    // look like a hang.
    let mut seen_stopping = false;
    let exited = wait_for(Duration::from_secs(20), || {
        let (screen, on) = (t.screen(), t.display("#{alternate_on}"));
        if screen.contains("EXITED") {
            return Some(Ok(screen));
        }
        seen_stopping |= screen.contains("stopping the demo");
        if on == "0" && alive(tui[0]) {
            return Some(Err(screen));
        }
        None
    });
    match exited {
        Some(Ok(screen)) => assert!(screen.contains("EXITED rc=0"), "{screen}"),
        Some(Err(screen)) => panic!(
            "the dashboard gave the terminal back but kept running, saying nothing \
             (stopping notice seen before: {seen_stopping}):\n{screen}"
        ),
        None => panic!("the dashboard did not exit:\n{}", t.screen()),
    }
    demo_gone(dir.path(), &pids);
}

#[test]
fn hanging_up_the_demo_leaves_nothing_behind() {
    let (dir, t) = demo();
    t.wait_screen("demo queues", |s| row(s, "demo.stage3").is_some());
    let pids = wait_for(Duration::from_secs(20), || {
        let pids = attached_pids(dir.path());
        (pids.len() >= 8).then_some(pids)
    })
    .expect("the demo's processes never all attached");
    // The terminal goes away (a closed window, a dropped ssh session): the kernel sends
    // SIGHUP to the terminal's foreground process group.
    t.hang_up();
    demo_gone(dir.path(), &pids);
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
    crashed_queue(dir.path(), "gone");
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

/// Runs `cmd` with its output captured, killing it (and failing) if it has not ended
/// within `limit`: an observer stuck on a hostile file must not hang the suite.
fn run_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} could not start: {e}"));
    // Drained meanwhile, so a chatty child never blocks on a full pipe.
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let status = wait_for(limit, || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} still running after {limit:?}");
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `mpqueue-top ARGS`, bounded; asserts it succeeded and returns its stdout.
fn top_within(args: &[&str], dir: &Path) -> String {
    let out = run_within(
        Command::new(bin("mpqueue-top"))
            .args(args)
            .arg("--dir")
            .arg(dir),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "mpqueue-top {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cleanup_once_and_json_refuse_fifos_and_links_to_devices() {
    let dir = queue_dir();
    let _kept: Queue<u8> = Queue::builder()
        .name("kept")
        .dir(dir.path())
        .create()
        .unwrap();
    let fifo = dir.path().join("q.f.stats");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("q.z.stats")).unwrap();
    // Reading the FIFO blocks for ever; reading /dev/zero never ends (and grows memory).
    let said = top_within(&["--cleanup"], dir.path());
    assert!(said.contains("no stale queue segments"), "{said}");
    let table = top_within(&["--once"], dir.path());
    assert!(
        table.contains("q.f.stats unreadable:") && table.contains("not a regular file"),
        "{table}"
    );
    assert!(
        table.contains("q.z.stats unreadable:") && table.contains("symlink"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("kept ")), "{table}");
    let v: Value = serde_json::from_str(&top_within(&["--json"], dir.path())).unwrap();
    assert_eq!(v["errors"].as_array().unwrap().len(), 2);
    for f in ["q.f.stats", "q.z.stats", "q.kept.stats", "q.kept.data"] {
        assert!(
            std::fs::symlink_metadata(dir.path().join(f)).is_ok(),
            "{f} was removed"
        );
    }
}

/// A child process that holds the named queues `NAME` and `NAME-reply` in `dir` and answers
/// every `n` put on the first with `n + 1` on the second, until killed.
fn echo_workload(dir: &Path, name: &str) -> Child {
    let requests: Queue<u64> = Queue::builder().name(name).dir(dir).create().unwrap();
    let replies: Queue<u64> = Queue::builder()
        .name(&format!("{name}-reply"))
        .dir(dir)
        .create()
        .unwrap();
    let child = process::fork(|| {
        die_with_parent();
        // Attaches to both queues: a hello on the replies, then requests.
        replies.put(0).unwrap();
        loop {
            if let Ok(n) = requests.get_timeout(Duration::from_millis(100)) {
                replies.put(n + 1).unwrap();
            }
        }
    })
    .unwrap();
    assert_eq!(replies.get_timeout(Duration::from_secs(20)), Ok(0));
    let pid = u64::from(child.pid());
    let attached = wait_for(Duration::from_secs(20), || {
        let v = json(dir);
        let held = v["queues"]
            .as_array()?
            .iter()
            .filter(|q| {
                q["processes"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["pid"] == pid))
            })
            .count();
        (held == 2).then_some(())
    });
    assert!(
        attached.is_some(),
        "the workload never attached to both queues"
    );
    // From here on the child alone holds them.
    drop((requests, replies));
    child
}

/// The workload answers through the queues it holds, opened by name from here.
fn echo_round_trip(dir: &Path, name: &str) {
    let requests: Queue<u64> = Queue::builder().dir(dir).open(name).unwrap();
    let replies: Queue<u64> = Queue::builder()
        .dir(dir)
        .open(&format!("{name}-reply"))
        .unwrap();
    requests.put(41).unwrap();
    assert_eq!(replies.get_timeout(Duration::from_secs(20)), Ok(42));
}

#[test]
fn cleanup_from_another_pid_namespace_keeps_live_queues() {
    let dir = queue_dir();
    let workload = echo_workload(dir.path(), "nsq");
    let files = [
        "q.nsq.data",
        "q.nsq.stats",
        "q.nsq-reply.data",
        "q.nsq-reply.stats",
    ];
    // A container that shares /dev/shm but has its own pid namespace (and /proc).
    let top = bin("mpqueue-top");
    let out = run_within(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(&top)
            .arg("--cleanup")
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "unshare must be installed and work: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("no stale queue segments"), "{said}");
    for f in files {
        assert!(dir.path().join(f).exists(), "{f} was removed: {said}");
    }
    // Seen from there, the workload's processes are unknown, not dead.
    let out = run_within(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(&top)
            .arg("--json")
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(30),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for q in v["queues"].as_array().unwrap() {
        assert_eq!(q["state"], "unknown", "{q}");
        assert_eq!(q["processes"][0]["liveness"], "unknown", "{q}");
    }
    echo_round_trip(dir.path(), "nsq");
    stop(vec![workload]);
}

#[test]
fn cleanup_without_a_readable_proc_removes_nothing() {
    let dir = queue_dir();
    crashed_queue(dir.path(), "gone");
    let workload = echo_workload(dir.path(), "held");
    // An empty /proc in a mount namespace of its own: no process can be known dead.
    let script = format!(
        "mount -t tmpfs none /proc && exec '{}' --cleanup --dir '{}'",
        bin("mpqueue-top").display(),
        dir.path().display()
    );
    let out = run_within(
        Command::new("unshare").args(["--mount", "sh", "-c", &script]),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "unshare must be installed and work: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("no stale queue segments"), "{said}");
    for f in ["q.gone.data", "q.gone.stats", "q.held.data", "q.held.stats"] {
        assert!(dir.path().join(f).exists(), "{f} was removed: {said}");
    }
    echo_round_trip(dir.path(), "held");
    // With /proc, the crashed creator's queue is known stale and goes; the live one stays.
    let said = top_within(&["--cleanup"], dir.path());
    assert!(
        said.contains("q.gone.stats") && !said.contains("held"),
        "{said}"
    );
    echo_round_trip(dir.path(), "held");
    stop(vec![workload]);
}

#[test]
fn dashboard_survives_stats_files_shrinking_under_it() {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = queue_dir();
    let q: Queue<u64> = Queue::builder()
        .name("original")
        .dir(dir.path())
        .create()
        .unwrap();
    q.put(1).unwrap();
    // Copies that no queue process maps: only the dashboard is exposed to the truncation.
    let bytes = std::fs::read(dir.path().join("q.original.stats")).unwrap();
    let copies: Vec<std::fs::File> = (0..20)
        .map(|i| {
            let p = dir.path().join(format!("q.shrink{i}.stats"));
            std::fs::write(&p, &bytes).unwrap();
            std::fs::OpenOptions::new().write(true).open(p).unwrap()
        })
        .collect();
    let t = Tmux::start(
        &format!(
            "{} --dir {} --interval 50ms",
            bin("mpqueue-top").display(),
            dir.path().display()
        ),
        130,
        40,
    );
    // The copies keep the original's name (it is in the file), so they are counted.
    t.wait_screen("the copies listed", |s| s.contains("21 queues: 21 live"));
    let shell: u32 = t.display("#{pane_pid}").parse().unwrap();
    let tui = children_named(shell, "mpqueue-top");
    assert_eq!(tui.len(), 1, "the dashboard runs in the pane");
    // Another process of the same user truncates them and writes them back, again and again;
    // each state lasts a moment (the pace of the attack, not a synchronisation), so reads
    // that started on a whole file go on after it was cut.
    let stop_flag = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop_flag.load(Ordering::Relaxed) {
                for f in &copies {
                    f.set_len(0).unwrap();
                }
                std::thread::sleep(Duration::from_micros(300));
                for f in &copies {
                    f.write_all_at(&bytes, 0).unwrap();
                }
                std::thread::sleep(Duration::from_micros(300));
            }
        });
        // Count the frames drawn after a refresh that caught a copy cut short (its row
        // shows it unreadable): each such refresh read files that were shrinking.
        let mut caught = 0;
        let mut last = String::new();
        let survived = wait_for(Duration::from_secs(60), || {
            let s = t.screen();
            if !alive(tui[0]) {
                last = s;
                return Some(false);
            }
            // The header names the unreadable count too; a row more is a short copy.
            if s != last && s.lines().filter(|l| l.contains("unreadable")).count() > 1 {
                caught += 1;
            }
            last = s;
            (caught >= 10).then_some(true)
        });
        stop_flag.store(true, Ordering::Relaxed);
        assert_eq!(
            survived,
            Some(true),
            "the dashboard died (killed by SIGBUS?) or never caught a short file:\n{last}"
        );
    });
    t.send(&["q"]);
    t.wait_screen("clean exit", |s| s.contains("EXITED rc=0"));
    assert_eq!(t.display("#{alternate_on}"), "0", "terminal restored");
}

/// Leaves the files of a named queue `name` in `dir` whose only process was killed (a
/// crash: no clean-up ran).
fn crashed_queue(dir: &std::path::Path, name: &str) {
    let d = dir.to_path_buf();
    let name = name.to_string();
    let child = process::fork(move || {
        let q: Queue<u8> = Queue::builder().name(&name).dir(&d).create().unwrap();
        std::mem::forget(q);
        // SAFETY: dies without clean-up, as a crash would.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        0
    })
    .unwrap();
    assert!(child.join().is_err(), "the child was killed");
}
