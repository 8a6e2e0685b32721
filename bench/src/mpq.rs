//! mpqueue in every scenario.

use crate::items::{B64, Big, Item, Msg};
use crate::shared::{Placement, timed_run};
use mpqueue::{Queue, process};
use std::time::Duration;

/// Items per second from `p` producers to `c` consumer processes.
pub fn tput<T: Item>(
    p: usize,
    c: usize,
    n: u64,
    place: Placement,
    stats: bool,
    maxsize: usize,
) -> anyhow::Result<f64> {
    let q: Queue<Msg<T>> = Queue::builder().stats(stats).maxsize(maxsize).create()?;
    let per = n / p as u64;
    let (secs, got) = timed_run(
        p,
        c,
        place,
        &|_| {
            for _ in 0..per {
                q.put(Msg::Item(T::make())).unwrap();
            }
            for _ in 0..c {
                q.put(Msg::Stop).unwrap();
            }
        },
        &|_| {
            let (mut got, mut stops) = (0, 0);
            while stops < p {
                match q.get().unwrap() {
                    Msg::Item(_) => got += 1,
                    Msg::Stop => stops += 1,
                }
            }
            got
        },
    )?;
    anyhow::ensure!(
        got == per * p as u64,
        "received {got} of {}",
        per * p as u64
    );
    Ok(got as f64 / secs)
}

/// MB/s (1e6 bytes) moving `n` items of 1 MiB from one process to another.
pub fn big(n: u64) -> anyhow::Result<f64> {
    let q: Queue<Msg<Big>> = Queue::builder().capacity_bytes(4 << 20).create()?;
    let (secs, got) = timed_run(
        1,
        1,
        Placement::Free,
        &|_| {
            for _ in 0..n {
                q.put(Msg::Item(Big::make())).unwrap();
            }
            q.put(Msg::Stop).unwrap();
        },
        &|_| {
            let mut got = 0;
            while let Msg::Item(b) = q.get().unwrap() {
                assert_eq!(b.0.len(), 1 << 20);
                got += 1;
            }
            got
        },
    )?;
    anyhow::ensure!(got == n);
    Ok(n as f64 * (1u64 << 20) as f64 / secs / 1e6)
}

/// Round trips between two processes over two queues: (median µs, p99 µs).
pub fn pingpong(n: usize, place: Placement) -> anyhow::Result<(f64, f64)> {
    let ping: Queue<crate::items::B64> = Queue::new(0)?;
    let pong: Queue<crate::items::B64> = Queue::new(0)?;
    crate::shared::pingpong(
        n,
        place,
        &|rounds| {
            for _ in 0..rounds {
                pong.put(ping.get().unwrap()).unwrap();
            }
        },
        &mut || {
            ping.put(crate::items::B64::make())?;
            pong.get_timeout(Duration::from_secs(30))?;
            Ok(())
        },
    )
}

/// The share of a CPU that a `get` blocked for 1 s on an empty queue uses (its thread's CPU
/// time over the wall time).
pub fn idle_get_cpu() -> anyhow::Result<f64> {
    use nix::time::ClockId;
    let q: Queue<crate::items::B64> = Queue::new(0)?;
    let cpu = || ClockId::CLOCK_THREAD_CPUTIME_ID.now().map(Duration::from);
    let (c0, t0) = (cpu()?, std::time::Instant::now());
    anyhow::ensure!(
        q.get_timeout(Duration::from_secs(1)).is_err(),
        "an item came from nowhere"
    );
    Ok((cpu()? - c0).as_secs_f64() / t0.elapsed().as_secs_f64())
}

/// Memory: (shared bytes per queue as created, resident bytes per queue after use (its shared
/// memory and the creator's private memory for it), private resident bytes per attached
/// process per queue).
pub fn memory() -> anyhow::Result<(u64, u64, u64)> {
    const N: usize = 50;
    // Resident kB of one kind in /proc/self/status: RssShmem (shared memory mapped here),
    // RssAnon (this process's private memory).
    let rss = |field: &str| -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
            * 1024
    };
    let shm_files = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    let dir =
        std::path::PathBuf::from(format!("/dev/shm/mpqueue-bench-mem-{}", std::process::id()));
    // Before creation: the creator attaches (and maps its ring) as it creates.
    let before = rss("RssShmem:") + rss("RssAnon:");
    let queues: Vec<Queue<crate::items::B64>> = (0..N)
        .map(|i| Queue::builder().name(&format!("m{i}")).dir(&dir).create())
        .collect::<Result<_, _>>()?;
    let declared = shm_files(&dir) / N as u64;
    for q in &queues {
        for _ in 0..100 {
            q.put(crate::items::B64::make())?;
            q.get()?;
        }
    }
    let touched = (rss("RssShmem:") + rss("RssAnon:")).saturating_sub(before) / N as u64;
    let board = crate::shared::Shared::new();
    let child = process::fork(|| {
        let before = rss("RssAnon:");
        for q in &queues {
            q.put(crate::items::B64::make()).unwrap();
            q.get().unwrap();
        }
        board.board().counts[0].store(
            rss("RssAnon:").saturating_sub(before),
            std::sync::atomic::Ordering::Relaxed,
        );
        0
    })?;
    anyhow::ensure!(child.join()? == 0);
    let per_process = board.board().counts[0].load(std::sync::atomic::Ordering::Relaxed) / N as u64;
    drop(queues);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((declared, touched, per_process))
}

/// Nanoseconds per `put` and per `get` of a 64 B item in one process, warm (batches of 1000
/// puts then 1000 gets; the median batch): what each side costs with no other process and
/// no cross-core transfer.
pub fn sides(batches: usize) -> anyhow::Result<(f64, f64)> {
    const N: usize = 1000;
    let q: Queue<Msg<B64>> = Queue::new(0)?;
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        let t = std::time::Instant::now();
        for _ in 0..N {
            q.put(Msg::Item(B64::make()))?;
        }
        puts.push(t.elapsed().as_nanos() as f64 / N as f64);
        let t = std::time::Instant::now();
        for _ in 0..N {
            std::hint::black_box(q.get()?);
        }
        gets.push(t.elapsed().as_nanos() as f64 / N as f64);
    }
    puts.sort_by(f64::total_cmp);
    gets.sort_by(f64::total_cmp);
    Ok((puts[batches / 2], gets[batches / 2]))
}

/// Nanoseconds to encode and to decode one 64 B item with bincode alone, with the options
/// mpqueue uses (varint integers, a size limit, no trailing bytes).
pub fn codec(n: usize) -> anyhow::Result<(f64, f64)> {
    use bincode::Options;
    let opts = || {
        bincode::DefaultOptions::new()
            .with_limit(64 << 20)
            .reject_trailing_bytes()
    };
    let mut buf = Vec::with_capacity(128);
    let t = std::time::Instant::now();
    for _ in 0..n {
        buf.clear();
        opts().serialize_into(&mut buf, std::hint::black_box(&Msg::Item(B64::make())))?;
    }
    let enc = t.elapsed().as_nanos() as f64 / n as f64;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let m: Msg<B64> = opts().deserialize(std::hint::black_box(&buf))?;
        std::hint::black_box(m);
    }
    Ok((enc, t.elapsed().as_nanos() as f64 / n as f64))
}
