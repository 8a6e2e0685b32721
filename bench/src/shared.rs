//! Process plumbing for the benchmarks: a shared-memory start barrier and result slots,
//! CPU pinning, and a runner that forks producers and consumers and times the run.

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::time::ClockId;
use nix::unistd::{Pid, SysconfVar, sysconf};
use std::num::NonZeroUsize;
use std::ptr::NonNull;
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
    ptr: NonNull<Board>,
}

impl Shared {
    pub fn new() -> Self {
        Shared {
            ptr: map_shared_zeroed(std::mem::size_of::<Board>())
                .expect("mmap for the benchmark board")
                .cast(),
        }
    }

    pub fn board(&self) -> &Board {
        // SAFETY: the mapping lives until drop and holds a Board (zeroed memory is a valid
        // Board: all atomics).
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping created in `new`; no reference outlives `self`.
        let _ = unsafe { munmap(self.ptr.cast(), std::mem::size_of::<Board>()) };
    }
}

/// `len` zeroed bytes in a fresh `MAP_SHARED|MAP_ANONYMOUS` mapping, shared with children
/// forked later. The caller unmaps it (`munmap`).
pub fn map_shared_zeroed(len: usize) -> nix::Result<NonNull<std::ffi::c_void>> {
    let len = NonZeroUsize::new(len).ok_or(nix::errno::Errno::EINVAL)?;
    // SAFETY: no address hint and no MAP_FIXED, so the mapping replaces nothing and aliases
    // no Rust object.
    unsafe {
        mmap_anonymous(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }
}

/// Monotonic nanoseconds.
pub fn now_ns() -> u64 {
    let ts = ClockId::CLOCK_MONOTONIC.now().expect("CLOCK_MONOTONIC");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Restricts the calling thread (in the benchmark's children: the process) to `cpus`.
/// Best effort, as a benchmark wants: a CPU that does not exist is skipped, and a set the
/// kernel refuses leaves the affinity as it was.
fn set_affinity(cpus: impl IntoIterator<Item = usize>) {
    let mut set = CpuSet::new();
    for cpu in cpus {
        let _ = set.set(cpu);
    }
    let _ = sched_setaffinity(Pid::from_raw(0), &set);
}

/// Pins the calling process to `cpu`.
pub fn pin(cpu: usize) {
    set_affinity([cpu]);
}

/// Back to every CPU after a pinned scenario.
pub fn unpin_all() {
    let online = sysconf(SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .unwrap_or(1);
    set_affinity(0..online.max(1) as usize);
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
