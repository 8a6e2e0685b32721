//! Shared set-up for the integration tests: a private segment directory per test binary
//! (under /dev/shm, removed at exit) and a watchdog that bounds every test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_dir() {
    if let Some(d) = DIR.get() {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Points `MPQUEUE_DIR` at a fresh directory for this test process; call first in every test.
pub fn setup() -> &'static Path {
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mpqueue-test-")
            .tempdir_in("/dev/shm")
            .expect("temp dir in /dev/shm")
            .keep();
        // SAFETY: runs once, before any test in this process reads the environment (every
        // test calls setup() before touching a queue).
        unsafe { std::env::set_var("MPQUEUE_DIR", &dir) };
        // The test process removes its directory when it exits (forked children leave with
        // _exit and do not): nothing is left in /dev/shm after the suite.
        // SAFETY: registers a plain function valid for the whole program.
        unsafe { libc::atexit(remove_dir) };
        dir
    })
}

/// Files left in the test directory (segments of live or leaked queues).
pub fn leftovers() -> Vec<String> {
    std::fs::read_dir(setup())
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Aborts the whole test process if the guard is still alive after `limit`.
pub struct Watchdog(Arc<AtomicBool>);

pub fn watchdog(limit: Duration) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !flag.load(Ordering::Relaxed) {
            eprintln!("watchdog: test exceeded {limit:?}; aborting");
            std::process::abort();
        }
    });
    Watchdog(done)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Zeroed memory shared with forked children (a `MAP_SHARED|MAP_ANONYMOUS` mapping), for
/// tests to record what each process saw. Never unmapped (tests are short-lived).
pub struct SharedBytes {
    ptr: *mut u8,
    len: usize,
}

impl SharedBytes {
    pub fn new(len: usize) -> Self {
        // SAFETY: a fresh shared anonymous mapping, inherited by children; checked for failure.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        SharedBytes { ptr: p.cast(), len }
    }

    /// Byte `i` as an atomic counter.
    pub fn byte(&self, i: usize) -> &std::sync::atomic::AtomicU8 {
        assert!(i < self.len, "index {i} out of {}", self.len);
        // SAFETY: i < len, inside the mapping; AtomicU8 has no invalid values.
        unsafe { &*(self.ptr.add(i) as *const std::sync::atomic::AtomicU8) }
    }

    /// The 8-byte word at byte offset `8 * i`, as an atomic.
    pub fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(8 * i + 8 <= self.len, "word {i} out of {}", self.len);
        // SAFETY: in bounds (asserted); the mapping is page-aligned, so 8*i is aligned.
        unsafe { &*(self.ptr.add(8 * i) as *const std::sync::atomic::AtomicU64) }
    }
}

/// The snapshot of the queue called `name` (named, or labelled).
pub fn snapshot(name: &str) -> mpqueue::observe::Snapshot {
    mpqueue::observe::list()
        .unwrap()
        .iter()
        .filter_map(|r| r.snapshot().ok())
        .find(|s| s.name == name)
        .expect("queue visible")
}

/// Makes the calling (forked) process die with its parent.
pub fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) has no memory preconditions.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
}

/// A process putting one item every `every` until killed.
pub fn producing(q: &mpqueue::Queue<u64>, every: Duration) -> mpqueue::Child {
    mpqueue::process::fork(|| {
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
pub fn consuming(q: &mpqueue::Queue<u64>, every: Duration) -> mpqueue::Child {
    mpqueue::process::fork(|| {
        die_with_parent();
        loop {
            let _ = q.get_timeout(Duration::from_secs(1));
            std::thread::sleep(every);
        }
    })
    .unwrap()
}

/// Kills the children (stopped ones too) and reaps them.
pub fn stop(children: Vec<mpqueue::Child>) {
    for mut c in children {
        let _ = c.kill(libc::SIGKILL);
        let _ = c.kill(libc::SIGCONT);
        let _ = c.join_timeout(Duration::from_secs(30));
    }
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

/// The ring's write position of the named queue `name`: the `write_pos` word of its data
/// segment (offset 192, pinned in layout.rs).
pub fn write_pos(name: &str) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(setup().join(format!("q.{name}.data"))).unwrap();
    let mut b = [0u8; 8];
    f.read_at(&mut b, 192).unwrap();
    u64::from_le_bytes(b)
}
