//! `--demo`: a realistic workload in child processes, so the dashboard has something to
//! show. A supervisor process owns the queues and forks the workers:
//!
//! - `demo.ingest` (unbounded): a bursty producer (a burst, then a pause) and a steady
//!   consumer, so the size saws up and down;
//! - `demo.orders` (maxsize 100): a fast producer and a slow consumer, so the queue fills,
//!   `put` blocks and Full events are counted;
//! - `demo.stage1` → `demo.stage2` → `demo.stage3` (maxsize 1000): a fast three-stage
//!   pipeline with one process per stage.
//!
//! Stopping sends SIGTERM to the supervisor, which stops the workers the same way; every
//! process detaches, so the last one removes the queues' shared memory.

use mpqueue::{Child, Queue, process};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(100);

/// The running workload.
pub struct Demo {
    supervisor: Child,
}

/// Asks the kernel to send this process SIGTERM when its parent dies, so the workload
/// stops (and cleans up) even if the dashboard is killed outright.
fn stop_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
}

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // Registration only fails for forbidden signals; these are allowed.
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    stop
}

fn queue<T: serde::Serialize + serde::de::DeserializeOwned>(
    label: &str,
    maxsize: usize,
) -> anyhow::Result<Queue<T>> {
    Ok(Queue::builder()
        .label(label)
        .maxsize(maxsize)
        .flush_timeout(Some(Duration::from_millis(500)))
        .create()?)
}

/// Starts the workload (call before the terminal is set up).
pub fn start() -> anyhow::Result<Demo> {
    let supervisor = process::fork(|| match supervise() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo: {e}");
            1
        }
    })?;
    Ok(Demo { supervisor })
}

impl Demo {
    /// Stops every worker and waits for them (SIGKILL after 10 s, then removes leftovers).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.supervisor.kill(signal_hook::consts::SIGTERM);
        if self
            .supervisor
            .join_timeout(Duration::from_secs(10))?
            .is_none()
        {
            let _ = self.supervisor.kill(signal_hook::consts::SIGKILL);
            let _ = self.supervisor.wait();
            mpqueue::observe::cleanup()?;
        }
        Ok(())
    }
}

fn supervise() -> anyhow::Result<()> {
    let stop = stop_flag();
    stop_with_parent();
    let ingest: Queue<Vec<u8>> = queue("demo.ingest", 0)?;
    let orders: Queue<(u64, String)> = queue("demo.orders", 100)?;
    let stages: Vec<Queue<u64>> = (1..=3)
        .map(|i| queue(&format!("demo.stage{i}"), 1000))
        .collect::<anyhow::Result<_>>()?;

    let mut workers: Vec<Child> = Vec::new();
    let mut spawn = |f: &dyn Fn(&AtomicBool)| -> anyhow::Result<()> {
        workers.push(process::fork(|| {
            let stop = stop_flag();
            stop_with_parent();
            f(&stop);
            0
        })?);
        Ok(())
    };
    // Bursty producer: 20k items in a burst, then a 2 s pause.
    spawn(&|stop| {
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..20_000 {
                if ingest.put_timeout(vec![0u8; 64], TICK).is_err() || stop.load(Ordering::Relaxed)
                {
                    break;
                }
            }
            sleep_unless(stop, Duration::from_secs(2));
        }
    })?;
    // Steady consumer: about 10k items per second.
    spawn(&|stop| {
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..100 {
                let _ = ingest.get_timeout(TICK);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })?;
    // Fast producer into a bounded queue…
    spawn(&|stop| {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if orders.put_timeout((n, format!("order {n}")), TICK).is_ok() {
                n += 1;
            }
        }
    })?;
    // …drained by a slow consumer (2 ms per order): the queue stays full.
    spawn(&|stop| {
        while !stop.load(Ordering::Relaxed) {
            if orders.get_timeout(TICK).is_ok() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })?;
    // Pipeline: source → stage1 → stage2 → stage3 → sink, about 50k items per second.
    spawn(&|stop| {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..500 {
                if stages[0].put_timeout(n, TICK).is_ok() {
                    n += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })?;
    for i in 0..2 {
        let (from, to) = (&stages[i], &stages[i + 1]);
        spawn(&|stop| {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(v) = from.get_timeout(TICK) {
                    while to.put_timeout(v + 1, TICK).is_err() && !stop.load(Ordering::Relaxed) {}
                }
            }
        })?;
    }
    spawn(&|stop| {
        while !stop.load(Ordering::Relaxed) {
            let _ = stages[2].get_timeout(TICK);
        }
    })?;

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
    }
    for w in &workers {
        let _ = w.kill(signal_hook::consts::SIGTERM);
    }
    for mut w in workers {
        if w.join_timeout(Duration::from_secs(5))?.is_none() {
            let _ = w.kill(signal_hook::consts::SIGKILL);
            let _ = w.wait();
        }
    }
    Ok(())
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK.min(end - Instant::now()));
    }
}
