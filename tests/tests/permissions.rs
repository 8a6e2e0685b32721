//! Another user cannot open, read or write a queue created with the default mode 0600:
//! the attacker runs as `nobody` through `setpriv` (util-linux; installed by the test
//! set-up). Needs root to switch users, as CI runs.

use mpqueue::Queue;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn other_users_cannot_open_or_observe_private_segments() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test switches users: run it as root");
    let dir = tempfile::Builder::new()
        .prefix("mpqueue-perm-")
        .tempdir_in("/dev/shm")
        .unwrap();
    // The directory itself is listable by others, so only the files' modes protect them.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper = dir.path().join("mpq-helper");
    std::fs::copy(env!("CARGO_BIN_EXE_mpq-helper"), &helper).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
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
    assert!(out.starts_with("permission denied"), "{out}");
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
