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
