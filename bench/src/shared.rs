//! Process plumbing for the benchmarks: a shared-memory start barrier and result slots,
//! CPU pinning, and a runner that forks producers and consumers and times the run.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Start barrier and per-process results, in memory shared with forked children.
#[repr(C)]
pub struct Board {
    ready: AtomicU32,
    go: AtomicU32,
    /// Monotonic ns when each child finished.
    pub ends: [AtomicU64; 64],
    /// Items each child handled (or any number it reports).
    pub counts: [AtomicU64; 64],
}

/// A `Board` in a shared anonymous mapping (inherited by `fork`).
pub struct Shared {
    ptr: *mut Board,
}

impl Shared {
    pub fn new() -> Self {
        let len = std::mem::size_of::<Board>();
        // SAFETY: a fresh anonymous shared mapping of the board's size, checked for failure;
        // zeroed memory is a valid Board (all atomics).
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
        assert_ne!(p, libc::MAP_FAILED, "mmap for the benchmark board");
        Shared { ptr: p.cast() }
    }

    pub fn board(&self) -> &Board {
        // SAFETY: the mapping lives until drop and holds a Board.
        unsafe { &*self.ptr }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping created in `new`; no reference outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), std::mem::size_of::<Board>()) };
    }
}

/// Monotonic nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pins the calling process to `cpu`.
pub fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays in bounds for cpu < 1024.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Back to every CPU after a pinned scenario.
pub fn unpin_all() {
    // SAFETY: builds a cpu_set_t with every online CPU and applies it to this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::sysconf(libc::_SC_NPROCESSORS_ONLN).max(1) as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Which CPUs the two sides run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the scheduler puts them.
    Free,
    /// Both on CPU 0.
    Same,
    /// Producer side on CPU 0, consumer side on CPU 1.
    Cross,
}

impl Placement {
    pub fn label(self) -> &'static str {
        match self {
            Placement::Free => "unpinned",
            Placement::Same => "same CPU",
            Placement::Cross => "cross CPU",
        }
    }

    /// CPU for a process on side `consumer`.
    pub fn cpu(self, consumer: bool) -> Option<usize> {
        match self {
            Placement::Free => None,
            Placement::Same => Some(0),
            Placement::Cross => Some(usize::from(consumer)),
        }
    }
}

/// Forks `producers` + `consumers` processes, releases them together, and returns the
/// seconds from the release to the last consumer's end. Each closure gets its index.
pub fn timed_run(
    producers: usize,
    consumers: usize,
    place: Placement,
    produce: &dyn Fn(usize),
    consume: &dyn Fn(usize) -> u64,
) -> anyhow::Result<(f64, u64)> {
    let shared = Shared::new();
    let b = shared.board();
    let mut kids = Vec::new();
    for i in 0..producers + consumers {
        let is_consumer = i >= producers;
        kids.push(mpqueue::process::fork(|| {
            if let Some(cpu) = place.cpu(is_consumer) {
                pin(cpu);
            }
            b.ready.fetch_add(1, Ordering::SeqCst);
            while b.go.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            if is_consumer {
                let n = consume(i - producers);
                b.counts[i].store(n, Ordering::Relaxed);
            } else {
                produce(i);
            }
            b.ends[i].store(now_ns(), Ordering::Release);
            0
        })?);
    }
    while b.ready.load(Ordering::SeqCst) < (producers + consumers) as u32 {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let t0 = now_ns();
    b.go.store(1, Ordering::Release);
    for k in kids {
        anyhow::ensure!(k.join()? == 0, "a benchmark process failed");
    }
    let t1 = (producers..producers + consumers)
        .map(|i| b.ends[i].load(Ordering::Acquire))
        .max()
        .unwrap_or(t0);
    let items = (producers..producers + consumers)
        .map(|i| b.counts[i].load(Ordering::Relaxed))
        .sum();
    Ok(((t1.saturating_sub(t0)) as f64 / 1e9, items))
}

/// Round trips between this process and a forked echo process: `echo(rounds)` runs in the
/// child (it must answer `rounds` pings), `round_trip()` does one ping and waits for its
/// pong here. The first 1000 are warm-up. Returns (median µs, p99 µs).
pub fn pingpong(
    n: usize,
    place: Placement,
    echo: &dyn Fn(usize),
    round_trip: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(f64, f64)> {
    let child = mpqueue::process::fork(|| {
        if let Some(cpu) = place.cpu(true) {
            pin(cpu);
        }
        echo(n + 1000);
        0
    })?;
    if let Some(cpu) = place.cpu(false) {
        pin(cpu);
    }
    let mut rtts = Vec::with_capacity(n);
    let result = (0..n + 1000).try_for_each(|i| {
        let t = now_ns();
        round_trip()?;
        if i >= 1000 {
            rtts.push(now_ns() - t);
        }
        Ok::<_, anyhow::Error>(())
    });
    unpin_all();
    result?;
    anyhow::ensure!(child.join()? == 0, "the echo process failed");
    Ok(crate::measure::percentiles(&mut rtts))
}
