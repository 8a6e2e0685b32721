//! Another user cannot open, read or write a queue created with the default mode 0600:
//! the attacker runs as `nobody` through `setpriv` (util-linux; installed by the test
//! set-up). Needs root to switch users, as CI runs.

use mpqueue::Queue;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// A directory under /dev/shm with `mode` (as root: this test switches users), holding a
/// copy of the helper program that other users can run; returns it and the helper's path.
fn shared_base(prefix: &str, mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test switches users: run it as root");
    let base = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/dev/shm")
        .unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    let helper = base.path().join("mpq-helper");
    std::fs::copy(env!("CARGO_BIN_EXE_mpq-helper"), &helper).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (base, helper)
}

#[test]
fn other_users_cannot_open_or_observe_private_segments() {
    // Listable by others: only the files' modes protect them.
    let (dir, helper) = shared_base("mpqueue-perm-", 0o755);
    let q: Queue<u64> = Queue::builder()
        .name("secret")
        .dir(dir.path())
        .create()
        .unwrap();
    q.put(42).unwrap();

    let as_nobody = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&helper)
            .args(args)
            .env("MPQUEUE_DIR", dir.path())
            .output()
            .expect("setpriv (util-linux) must be installed");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = as_nobody(&["open", "secret"]);
    assert_eq!(code, Some(3), "{out}");
    // Refused: the segment is 0600 (and the directory is not nobody's).
    assert!(
        out.starts_with("permission denied") || out.starts_with("refusing"),
        "{out}"
    );
    let (code, out) = as_nobody(&["observe"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("secret error: permission denied"), "{out}");
    // Nothing the attacker tried changed the queue.
    assert_eq!(q.get().unwrap(), 42);
    // As the owner, both work.
    let out = Command::new(&helper)
        .args(["observe"])
        .env("MPQUEUE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("secret ok puts=1"));
}

/// Runs the helper as `uid` (group the same, no supplementary groups) with `MPQUEUE_DIR`.
fn helper_as(uid: u32, helper: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
    ])
    .arg(helper)
    .args(args)
    .env("MPQUEUE_DIR", dir);
    c
}

fn output(mut c: Command) -> (Option<i32>, String) {
    let out = c.output().expect("setpriv (util-linux) must be installed");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Issue 11, item 1: user B plants `mpqueue-<A's uid>` (mode 755) before A uses mpqueue,
/// creates `jobs` in it, stays attached and makes the files 0666. A must not use B's queue
/// (or that directory at all): every way in fails with an error that names the directory,
/// its owner and its mode.
#[test]
fn a_planted_queue_directory_is_refused() {
    // World-writable and sticky, like /dev/shm.
    let (base, helper) = shared_base("mpqueue-plant-", 0o1777);
    let (attacker, victim) = (65534, 65533);
    let dir = base.path().join(format!("mpqueue-{victim}"));
    // B (nobody) plants the directory before A ever uses mpqueue, and a queue in it.
    let mut mkdir = Command::new("setpriv");
    mkdir.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "mkdir",
        "-m",
        "755",
    ]);
    assert_eq!(
        output({
            mkdir.arg(&dir);
            mkdir
        })
        .0,
        Some(0)
    );
    let mut plant = KillOnDrop(
        helper_as(attacker, &helper, &dir, &["plant", "jobs"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(plant.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");

    for args in [
        &["open", "jobs"][..],
        &["open-or-create", "jobs"],
        &["anon"],
    ] {
        let (code, out) = output(helper_as(victim, &helper, &dir, args));
        assert_eq!(code, Some(3), "{args:?} must fail: {out}");
        for part in [
            dir.display().to_string(),
            format!("owned by uid {attacker}"),
            "mode 755".into(),
        ] {
            assert!(
                out.contains(&part),
                "{args:?}: {out:?} should name {part:?}"
            );
        }
    }
    drop(plant);
}

/// A child process that is killed and reaped when dropped, so a failing assert leaves no
/// attacker running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 11, item 1: in the caller's own directory, a segment owned by another user is
/// refused too (checked on the opened descriptor).
#[test]
fn a_foreign_segment_in_ones_own_directory_is_refused() {
    let (base, helper) = shared_base("mpqueue-foreign-", 0o755);
    let victim = 65533;
    let dir = base.path().join("victim");
    std::fs::create_dir(&dir).unwrap();
    // A real queue made here by root, then handed to nobody (as a same-group or root
    // neighbour could), in a directory that belongs to the victim.
    let q: Queue<u64> = Queue::builder().name("jobs").dir(&dir).create().unwrap();
    q.put(1).unwrap();
    for ext in ["data", "stats"] {
        std::os::unix::fs::chown(dir.join(format!("q.jobs.{ext}")), Some(65534), Some(65534))
            .unwrap();
        std::fs::set_permissions(
            dir.join(format!("q.jobs.{ext}")),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
    }
    std::os::unix::fs::chown(&dir, Some(victim), Some(victim)).unwrap();
    let (code, out) = output(helper_as(victim, &helper, &dir, &["open", "jobs"]));
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("owned by uid 65534"), "{out}");
    assert_eq!(q.get_nowait(), Ok(1), "the queue itself is untouched");
}
