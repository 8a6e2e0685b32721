//! Helpers for the end-to-end tests: the workspace's binaries, a private queue directory,
//! a tmux session driven like a person would, and polling with deadlines; the exporter and
//! a Prometheus server ([`prom`]); the dashboard's queries and PromQL selectors ([`promql`]).
#![allow(dead_code)]

pub mod prom;
pub mod promql;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A binary of the workspace, built next to this package's own (`cargo nextest run
/// --workspace` or `cargo build --workspace` builds them all).
pub fn bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_mpq-helper")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// A fresh queue directory under /dev/shm, removed on drop.
pub fn queue_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mpqueue-e2e-")
        .tempdir_in("/dev/shm")
        .unwrap()
}

/// Polls `f` until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A detached tmux session of a known size running one command, on a tmux server of its
/// own (so parallel tests never race on one server); the server is killed on drop.
pub struct Tmux {
    pub name: String,
}

fn tmux_cmd(server: &str) -> Command {
    let mut c = Command::new("tmux");
    c.args(["-L", server]).env_remove("TMUX");
    c
}

fn tmux(server: &str, args: &[&str]) -> String {
    let out = tmux_cmd(server)
        .args(args)
        .output()
        .expect("tmux must be installed (scripts/test.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Tmux {
    /// Starts `cmd` (a shell command line) in a `w`×`h` session. The pane stays after the
    /// command exits and shows `EXITED rc=N`.
    pub fn start(cmd: &str, w: u16, h: u16) -> Self {
        let name = format!("mpq-e2e-{}-{}", std::process::id(), rand_suffix());
        let line = format!("{cmd}; echo EXITED rc=$?; sleep 600");
        let (w, h) = (w.to_string(), h.to_string());
        let out = tmux_cmd(&name)
            .args(["new-session", "-d", "-s", &name, "-x", &w, "-y", &h, &line])
            .output()
            .expect("tmux must be installed (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmux { name }
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        tmux(&self.name, &["capture-pane", "-p", "-t", &self.name])
    }

    /// Sends keys (tmux key names such as `Enter`, `Escape`, `C-c`, or plain text).
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.name.as_str()];
        args.extend_from_slice(keys);
        tmux(&self.name, &args);
    }

    /// Resizes the window.
    pub fn resize(&self, w: u16, h: u16) {
        let (w, h) = (w.to_string(), h.to_string());
        tmux(
            &self.name,
            &["resize-window", "-t", &self.name, "-x", &w, "-y", &h],
        );
    }

    /// A tmux format value of the pane, e.g. `#{alternate_on}`.
    pub fn display(&self, format: &str) -> String {
        tmux(
            &self.name,
            &["display-message", "-p", "-t", &self.name, format],
        )
        .trim()
        .to_string()
    }

    /// Waits until the screen satisfies `pred`; returns it, or panics with the last screen.
    pub fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        wait_for(Duration::from_secs(20), || {
            last = self.screen();
            pred(&last).then(|| last.clone())
        })
        .unwrap_or_else(|| panic!("timed out waiting for {what}; screen:\n{last}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        tmux(&self.name, &["kill-server"]);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() % 1_000_000
}

/// Pids of running children of `parent` whose command name is `comm`.
pub fn children_named(parent: u32, comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let mut rest = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            let (state, ppid) = (rest.next(), rest.next().and_then(|p| p.parse::<u32>().ok()));
            ppid == Some(parent)
                && state != Some("Z")
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// Whether `pid` is still a running (not zombie) process.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// In a forked test child: die with the thread that forked it, so a failing test never
/// leaves endless workers behind.
pub fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
}

impl Tmux {
    /// Kills the tmux server: the pane's terminal hangs up.
    pub fn hang_up(&self) {
        tmux(&self.name, &["kill-server"]);
    }
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, …) in bytes; `None` if the process
/// or the field is gone.
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Aborts the test process if still alive after `limit`: no test hangs the suite. Dropping
/// it disarms it.
pub struct Watchdog(std::sync::Arc<std::sync::atomic::AtomicBool>);

/// Arms a [`Watchdog`] for `limit`.
pub fn watchdog(limit: Duration) -> Watchdog {
    use std::sync::atomic::Ordering;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("watchdog: test exceeded {limit:?}; aborting");
        std::process::abort();
    });
    Watchdog(done)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Forked workers, killed (and continued, if stopped) and reaped on drop.
#[derive(Default)]
pub struct Workers(pub Vec<mpqueue::Child>);

impl Workers {
    /// Adds a worker; its index.
    pub fn add(&mut self, c: mpqueue::Child) -> usize {
        self.0.push(c);
        self.0.len() - 1
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill(libc::SIGKILL);
            let _ = c.kill(libc::SIGCONT);
            let _ = c.join_timeout(Duration::from_secs(30));
        }
    }
}

/// `mpqueue-top ARGS --dir DIR`, killed (and failing) if it has not ended within 30 s;
/// asserts it succeeded and returns its stdout.
pub fn top(args: &[&str], dir: &Path) -> String {
    use std::process::Stdio;
    let limit = Duration::from_secs(30);
    let mut child = Command::new(bin("mpqueue-top"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read meanwhile, so that a large document never blocks the child on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut v);
        v
    });
    let Some(status) = wait_for(limit, || child.try_wait().unwrap()) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("mpqueue-top {args:?} still running after {limit:?}");
    };
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert!(status.success(), "mpqueue-top {args:?}: {err}");
    reader.join().unwrap()
}

/// The queue `name` in `mpqueue-top --json ARGS --dir DIR`.
pub fn json_queue(dir: &Path, args: &[&str], name: &str) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let doc: serde_json::Value = serde_json::from_str(&top(&all, dir)).unwrap();
    doc["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc}"))
        .clone()
}

/// Whether every thread of process `pid` is stopped (`kill(SIGSTOP)` returns before the
/// threads other than the one that takes the signal have stopped).
pub fn all_threads_stopped(pid: u32) -> bool {
    let state = |stat: String| {
        stat.rsplit(')')
            .next()
            .map(|r| r.trim_start().starts_with('T'))
    };
    std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
        tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(state)
                == Some(true)
        })
    })
}
