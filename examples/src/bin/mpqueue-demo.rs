//! `mpqueue-demo`: a realistic workload of queues in child processes, run until stopped, so
//! that `mpqueue-top` has something to show (`mpqueue-top --demo` starts it).
//!
//! This process (the supervisor) creates the queues and forks the workers:
//!
//! - `demo.ingest` (unbounded): a bursty producer (a burst, then a pause) and a steady
//!   consumer, so the size saws up and down;
//! - `demo.orders` (maxsize 100): a fast producer and a slow consumer, so the queue fills,
//!   `put` blocks and Full events are counted;
//! - `demo.stage1` → `demo.stage2` → `demo.stage3` (maxsize 1000): a fast three-stage
//!   pipeline with one process per stage.
//!
//! SIGTERM, SIGINT or SIGHUP stops the supervisor, which stops the workers the same way.
//! Every worker looks at its stop flag at least every [`TICK`] (no wait of theirs is
//! longer), and drops what it still buffers instead of flushing it (the queues go away with
//! the demo), so the whole workload is gone in a fraction of a second. Every process
//! detaches, so the last one removes the queues' shared memory. A worker whose supervisor
//! dies gets SIGTERM from the kernel and stops too.
//!
//! `mpqueue-top --demo` starts it in a process group of its own (so a terminal that hangs
//! up signals the dashboard alone, which then stops the workload in order) with SIGTERM
//! as its parent-death signal. On its own:
//! `cargo run --release -p mpqueue-examples --bin mpqueue-demo` (Ctrl-C stops it), and
//! `mpqueue-top` in another terminal.

use mpqueue::{Child, Queue, process};
use nix::sys::signal::Signal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest any demo process waits without looking at its stop flag.
const TICK: Duration = Duration::from_millis(50);
/// How long the supervisor gives its workers to stop before it kills them.
const WORKERS_STOP_WITHIN: Duration = Duration::from_secs(2);

/// The demo's queues, created by the supervisor and inherited by every worker.
struct Queues {
    ingest: Queue<Vec<u8>>,
    orders: Queue<(u64, String)>,
    stages: [Queue<u64>; 3],
}

fn main() -> anyhow::Result<()> {
    let stop = stop_flag();
    let queues = Queues {
        ingest: queue("demo.ingest", 0)?,
        orders: queue("demo.orders", 100)?,
        stages: [
            queue("demo.stage1", 1000)?,
            queue("demo.stage2", 1000)?,
            queue("demo.stage3", 1000)?,
        ],
    };
    let workers = spawn_workers(&queues);
    // Until told to stop; then (and if forking a worker failed) the workers stop too.
    while workers.is_ok() && !stopped(&stop) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (workers, failed) = match workers {
        Ok(w) => (w, None),
        Err((w, e)) => (w, Some(e)),
    };
    stop_workers(workers);
    failed.map_or(Ok(()), Err)
}

/// A flag set by SIGTERM, SIGINT or SIGHUP.
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

fn stopped(stop: &AtomicBool) -> bool {
    // Relaxed: the flag carries no data; a stale read only delays stopping by one loop.
    stop.load(Ordering::Relaxed)
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

/// Forks one worker per job: on an error, the workers forked so far and the error.
fn spawn_workers(q: &Queues) -> Result<Vec<Child>, (Vec<Child>, anyhow::Error)> {
    let jobs: [&dyn Fn(&AtomicBool); 8] = [
        &|stop| bursty_producer(&q.ingest, stop),
        &|stop| steady_consumer(&q.ingest, stop),
        &|stop| fast_producer(&q.orders, stop),
        &|stop| slow_consumer(&q.orders, stop),
        &|stop| pipeline_source(&q.stages[0], stop),
        &|stop| pipeline_stage(&q.stages[0], &q.stages[1], stop),
        &|stop| pipeline_stage(&q.stages[1], &q.stages[2], stop),
        &|stop| pipeline_sink(&q.stages[2], stop),
    ];
    let mut workers = Vec::new();
    for job in jobs {
        let forked = process::fork(|| {
            let stop = stop_flag();
            // The kernel stops the worker if the supervisor dies without stopping it.
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
            job(&stop);
            0
        });
        match forked {
            Ok(child) => workers.push(child),
            Err(e) => return Err((workers, anyhow::Error::new(e).context("forking a worker"))),
        }
    }
    Ok(workers)
}

/// Sends every worker SIGTERM and waits for them; one still there after
/// [`WORKERS_STOP_WITHIN`] is killed (its slots are freed when the last process detaches:
/// it is known dead).
fn stop_workers(workers: Vec<Child>) {
    for w in &workers {
        let _ = w.kill(signal_hook::consts::SIGTERM);
    }
    let deadline = Instant::now() + WORKERS_STOP_WITHIN;
    for mut w in workers {
        let left = deadline.saturating_duration_since(Instant::now());
        if !matches!(w.join_timeout(left), Ok(Some(_))) {
            let _ = w.kill(signal_hook::consts::SIGKILL);
            let _ = w.wait();
        }
    }
}

// When the demo stops, what a producer still buffers is dropped (cancel_join_thread), not
// flushed: its consumer is stopping too, and the queue goes away with the demo.

/// 20k items in a burst, then a 2 s pause.
fn bursty_producer(q: &Queue<Vec<u8>>, stop: &AtomicBool) {
    while !stopped(stop) {
        for _ in 0..20_000 {
            if q.put_timeout(vec![0u8; 64], TICK).is_err() || stopped(stop) {
                break;
            }
        }
        sleep_unless(stop, Duration::from_secs(2));
    }
    q.cancel_join_thread();
}

/// About 10k items per second.
fn steady_consumer(q: &Queue<Vec<u8>>, stop: &AtomicBool) {
    while !stopped(stop) {
        for _ in 0..100 {
            if stopped(stop) {
                break;
            }
            let _ = q.get_timeout(TICK);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// As fast as the bounded queue takes them…
fn fast_producer(q: &Queue<(u64, String)>, stop: &AtomicBool) {
    let mut n = 0u64;
    while !stopped(stop) {
        if q.put_timeout((n, format!("order {n}")), TICK).is_ok() {
            n += 1;
        }
    }
    q.cancel_join_thread();
}

/// …drained at 2 ms per order: the queue stays full.
fn slow_consumer(q: &Queue<(u64, String)>, stop: &AtomicBool) {
    while !stopped(stop) {
        if q.get_timeout(TICK).is_ok() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The pipeline's source: about 50k items per second into stage 1.
fn pipeline_source(to: &Queue<u64>, stop: &AtomicBool) {
    let mut n = 0u64;
    while !stopped(stop) {
        for _ in 0..500 {
            if stopped(stop) {
                break;
            }
            if to.put_timeout(n, TICK).is_ok() {
                n += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    to.cancel_join_thread();
}

/// One pipeline stage: each item from `from`, plus one, into `to`.
fn pipeline_stage(from: &Queue<u64>, to: &Queue<u64>, stop: &AtomicBool) {
    while !stopped(stop) {
        if let Ok(v) = from.get_timeout(TICK) {
            while to.put_timeout(v + 1, TICK).is_err() && !stopped(stop) {}
        }
    }
    to.cancel_join_thread();
}

/// The pipeline's sink: takes everything from stage 3.
fn pipeline_sink(from: &Queue<u64>, stop: &AtomicBool) {
    while !stopped(stop) {
        let _ = from.get_timeout(TICK);
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stopped(stop) {
        std::thread::sleep(TICK.min(end - Instant::now()));
    }
}
