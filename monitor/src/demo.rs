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
//! Stopping sends SIGTERM to the supervisor, which stops the workers the same way. Every
//! worker looks at its stop flag at least every [`TICK`] (no wait of theirs is longer), and
//! drops what it still buffers instead of flushing it (the queues go away with the demo),
//! so the whole workload is gone in a fraction of a second. Every process detaches, so the
//! last one removes the queues' shared memory. The supervisor has a process group of its
//! own: a terminal that hangs up (or Ctrl-C outside the dashboard's raw mode) signals the
//! dashboard alone, which then stops the workload in order.

use mpqueue::{Child, Queue, observe, process};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest any demo process waits without looking at its stop flag.
const TICK: Duration = Duration::from_millis(50);
/// How long the supervisor gives its workers to stop before it kills them.
const WORKERS_STOP_WITHIN: Duration = Duration::from_secs(2);
/// How long the dashboard gives the supervisor before it kills it and removes the demo's
/// queues itself.
const DEMO_STOPS_WITHIN: Duration = Duration::from_secs(5);

/// The running workload.
pub struct Demo {
    supervisor: Child,
    stopping_since: Option<Instant>,
    done: bool,
}

/// Asks the kernel to send this process SIGTERM when its parent dies, so the workload
/// stops (and cleans up) even if the dashboard is killed outright.
fn stop_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
}

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
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
        Err(_) => 1,
    })?;
    Ok(Demo {
        supervisor,
        stopping_since: None,
        done: false,
    })
}

impl Demo {
    /// The supervisor's pid: the demo's queues are `a.PID.*`.
    pub fn pid(&self) -> u32 {
        self.supervisor.pid()
    }

    /// Asks the workload to stop; [`poll`](Self::poll) says when it has.
    pub fn begin_stop(&mut self) {
        if self.stopping_since.is_none() {
            self.stopping_since = Some(Instant::now());
            let _ = self.supervisor.kill(signal_hook::consts::SIGTERM);
        }
    }

    /// Whether the workload has stopped (after [`begin_stop`](Self::begin_stop)). A
    /// supervisor that is still there after [`DEMO_STOPS_WITHIN`] is killed, and the demo's
    /// queues that no live process holds any more are removed.
    pub fn poll(&mut self) -> anyhow::Result<bool> {
        if self.done {
            return Ok(true);
        }
        if self.supervisor.try_wait()?.is_some() {
            self.done = true;
        } else if self
            .stopping_since
            .is_some_and(|t| t.elapsed() >= DEMO_STOPS_WITHIN)
        {
            let _ = self.supervisor.kill(signal_hook::consts::SIGKILL);
            self.supervisor.wait()?;
            self.done = true;
        }
        if self.done {
            self.remove_leftovers();
        }
        Ok(self.done)
    }

    /// Stops the workload and waits for it (bounded, see [`poll`](Self::poll)).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.begin_stop();
        while !self.poll()? {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Removes what the demo's processes could not (only after a kill): its queues whose
    /// processes are all known dead.
    fn remove_leftovers(&self) {
        let prefix = format!("a.{}.", self.pid());
        if let Ok(list) = observe::list() {
            for q in list {
                let id = q
                    .path()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned());
                if id.is_some_and(|id| id.starts_with(&prefix)) {
                    q.remove_if_stale();
                }
            }
        }
    }
}

fn supervise() -> anyhow::Result<()> {
    // A process group of its own (the workers inherit it): the terminal's signals go to
    // the dashboard only, which stops the workload in order.
    // SAFETY: setpgid on this process only changes its process group.
    unsafe { libc::setpgid(0, 0) };
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
    let stopped = |stop: &AtomicBool| stop.load(Ordering::Relaxed);
    // When the demo stops, what a producer still buffers is dropped (cancel_join_thread),
    // not flushed: its consumer is stopping too, and the queue goes away with the demo.
    // Bursty producer: 20k items in a burst, then a 2 s pause.
    spawn(&|stop| {
        while !stopped(stop) {
            for _ in 0..20_000 {
                if ingest.put_timeout(vec![0u8; 64], TICK).is_err() || stopped(stop) {
                    break;
                }
            }
            sleep_unless(stop, Duration::from_secs(2));
        }
        ingest.cancel_join_thread();
    })?;
    // Steady consumer: about 10k items per second.
    spawn(&|stop| {
        while !stopped(stop) {
            for _ in 0..100 {
                if stopped(stop) {
                    break;
                }
                let _ = ingest.get_timeout(TICK);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })?;
    // Fast producer into a bounded queue…
    spawn(&|stop| {
        let mut n = 0u64;
        while !stopped(stop) {
            if orders.put_timeout((n, format!("order {n}")), TICK).is_ok() {
                n += 1;
            }
        }
        orders.cancel_join_thread();
    })?;
    // …drained by a slow consumer (2 ms per order): the queue stays full.
    spawn(&|stop| {
        while !stopped(stop) {
            if orders.get_timeout(TICK).is_ok() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })?;
    // Pipeline: source → stage1 → stage2 → stage3 → sink, about 50k items per second.
    spawn(&|stop| {
        let mut n = 0u64;
        while !stopped(stop) {
            for _ in 0..500 {
                if stopped(stop) {
                    break;
                }
                if stages[0].put_timeout(n, TICK).is_ok() {
                    n += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stages[0].cancel_join_thread();
    })?;
    for i in 0..2 {
        let (from, to) = (&stages[i], &stages[i + 1]);
        spawn(&|stop| {
            while !stopped(stop) {
                if let Ok(v) = from.get_timeout(TICK) {
                    while to.put_timeout(v + 1, TICK).is_err() && !stopped(stop) {}
                }
            }
            to.cancel_join_thread();
        })?;
    }
    spawn(&|stop| {
        while !stopped(stop) {
            let _ = stages[2].get_timeout(TICK);
        }
    })?;

    while !stopped(&stop) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in &workers {
        let _ = w.kill(signal_hook::consts::SIGTERM);
    }
    let deadline = Instant::now() + WORKERS_STOP_WITHIN;
    for mut w in workers {
        let left = deadline.saturating_duration_since(Instant::now());
        if w.join_timeout(left)?.is_none() {
            // Its slots are freed when the last process detaches: it is known dead.
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
