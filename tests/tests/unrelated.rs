//! Unrelated processes (separate programs, exec'd) share a named queue.

use mpqueue::{Queue, observe};
use std::process::{Command, Stdio};
use std::time::Duration;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mpq-helper"))
}

#[test]
fn separate_programs_meet_on_a_named_queue() {
    let dir = tempfile::Builder::new()
        .prefix("mpqueue-e2e-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let q: Queue<u64> = Queue::builder()
        .name("e2e-jobs")
        .dir(dir.path())
        .maxsize(100)
        .create()
        .unwrap();
    let producers: Vec<_> = (0..3)
        .map(|_| {
            helper()
                .args(["put", "e2e-jobs", "10000"])
                .env("MPQUEUE_DIR", dir.path())
                .spawn()
                .unwrap()
        })
        .collect();
    let consumer = helper()
        .args(["get", "e2e-jobs", "30000"])
        .env("MPQUEUE_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for mut p in producers {
        assert!(p.wait().unwrap().success());
    }
    let out = consumer.wait_with_output().unwrap();
    assert!(out.status.success());
    let sum: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sum, 3 * (0..10_000u64).sum::<u64>());
    let s = observe::list_in(dir.path()).unwrap()[0].snapshot().unwrap();
    assert_eq!((s.puts, s.gets, s.size), (30_000, 30_000, 0));
    assert!(q.get_timeout(Duration::from_millis(10)).is_err());
}

#[test]
fn killed_program_shows_dead_and_its_counts_stay() {
    let dir = tempfile::Builder::new()
        .prefix("mpqueue-e2e-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let _q: Queue<u64> = Queue::builder()
        .name("e2e-kill")
        .dir(dir.path())
        .create()
        .unwrap();
    let mut holder = helper()
        .args(["hold", "e2e-kill"])
        .env("MPQUEUE_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "attached");
    let pid = holder.id();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let s = observe::list_in(dir.path()).unwrap()[0].snapshot().unwrap();
    let dead = s
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .expect("killed process listed");
    assert!(!dead.alive);
    assert_eq!(s.puts, 1);
    assert!(s.alive, "the creator is still alive");
}

/// Issue 11, item 6: a process in another pid namespace (a container sharing `/dev/shm`)
/// cannot tell whether this namespace's processes live, so it never takes their slots for
/// dead: with every slot taken it gets `TooManyProcesses`, and the holder keeps its slot.
#[test]
fn another_pid_namespace_never_reaps_live_processes() {
    let dir = tempfile::Builder::new()
        .prefix("mpqueue-e2e-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let q: Queue<u64> = Queue::builder()
        .name("nsq")
        .dir(dir.path())
        .max_processes(1)
        .create()
        .unwrap();
    q.put(1).unwrap();
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_mpq-helper"))
        .args(["open", "nsq"])
        .env("MPQUEUE_DIR", dir.path())
        .output()
        .expect("unshare (util-linux) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("no free process slot"), "{text}");
    let s = observe::list_in(dir.path()).unwrap()[0].snapshot().unwrap();
    assert_eq!(s.processes.len(), 1);
    assert_eq!(
        s.processes[0].pid,
        std::process::id(),
        "the live holder keeps its slot"
    );
    assert_eq!(q.get_nowait(), Ok(1));
}

/// Issue 11: library code never prints. A queue whose exit flush stalls (nobody reads) and
/// drops items reports it through `JoinError::Stalled` and the stats, and writes nothing to
/// the program's stderr (it used to print a line from the feeder thread).
#[test]
fn a_stalled_flush_prints_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("mpqueue-e2e-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let out = helper()
        .arg("stall")
        .env("MPQUEUE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "dropped 9");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "the library printed"
    );
}
