//! The machine's limits, as tiny reference programs: a raw pipe with one `write` per frame
//! and exact reads, and a single-producer single-consumer ring in shared memory (raw bytes,
//! no encoding, no locks, no feeder).

use crate::shared::{Placement, Shared, map_shared_zeroed, timed_run};
use nix::fcntl::{FcntlArg, fcntl};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

fn pipe(size: Option<usize>) -> anyhow::Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe().map_err(|e| anyhow::anyhow!("pipe failed: {e}"))?;
    if let Some(sz) = size {
        // Best effort, as before: an unprivileged size above pipe-max-size is refused.
        let _ = fcntl(&w, FcntlArg::F_SETPIPE_SZ(sz as std::ffi::c_int));
    }
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// Frames per second of `len`-byte frames over a pipe: one write of header+payload per
/// frame, exact reads on the other side.
pub fn pipe_tput(n: u64, len: usize, place: Placement) -> anyhow::Result<f64> {
    let (r, w) = pipe(None)?;
    let (secs, got) = timed_run(
        1,
        1,
        place,
        &|_| {
            let mut frame = vec![7u8; 4 + len];
            frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
            let mut w = &w;
            for _ in 0..n {
                w.write_all(&frame).unwrap();
            }
        },
        &|_| {
            let mut r = &r;
            let mut hdr = [0u8; 4];
            let mut body = vec![0u8; len];
            for _ in 0..n {
                r.read_exact(&mut hdr).unwrap();
                r.read_exact(&mut body[..u32::from_le_bytes(hdr) as usize])
                    .unwrap();
            }
            n
        },
    )?;
    anyhow::ensure!(got == n);
    Ok(n as f64 / secs)
}

/// MB/s of 1 MiB frames over a pipe enlarged to 1 MiB (`F_SETPIPE_SZ`).
pub fn pipe_big(n: u64) -> anyhow::Result<f64> {
    let (r, w) = pipe(Some(1 << 20))?;
    let (secs, _) = timed_run(
        1,
        1,
        Placement::Free,
        &|_| {
            let frame = vec![5u8; 1 << 20];
            let mut w = &w;
            for _ in 0..n {
                w.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
                w.write_all(&frame).unwrap();
            }
        },
        &|_| {
            let mut r = &r;
            let mut hdr = [0u8; 4];
            let mut body = vec![0u8; 1 << 20];
            for _ in 0..n {
                r.read_exact(&mut hdr).unwrap();
                r.read_exact(&mut body).unwrap();
            }
            n
        },
    )?;
    Ok(n as f64 * (1u64 << 20) as f64 / secs / 1e6)
}

/// Round trips of 64-byte frames over two pipes: (median µs, p99 µs).
pub fn pipe_pingpong(n: usize, place: Placement) -> anyhow::Result<(f64, f64)> {
    let (r1, w1) = pipe(None)?;
    let (r2, w2) = pipe(None)?;
    let mut buf = [7u8; 64];
    crate::shared::pingpong(
        n,
        place,
        &|rounds| {
            let mut b = [0u8; 64];
            for _ in 0..rounds {
                (&r1).read_exact(&mut b).unwrap();
                (&w2).write_all(&b).unwrap();
            }
        },
        &mut || {
            (&w1).write_all(&buf)?;
            (&r2).read_exact(&mut buf)?;
            Ok(())
        },
    )
}

const RING: usize = 1 << 20;

#[repr(C)]
struct Spsc {
    head: AtomicU64,
    _pad: [u64; 15],
    tail: AtomicU64,
    _pad2: [u64; 15],
    data: [u8; RING],
}

/// Frames per second of `len`-byte frames through a single-producer single-consumer
/// shared-memory ring: the raw limit of moving bytes between two processes.
pub fn shm_ring(n: u64, len: usize, place: Placement) -> anyhow::Result<f64> {
    let size = std::mem::size_of::<Spsc>();
    // A fresh shared anonymous mapping large enough for Spsc; zeroed is a valid Spsc.
    let p = map_shared_zeroed(size).map_err(|e| anyhow::anyhow!("mmap: {e}"))?;
    let ring = p.as_ptr().cast::<Spsc>();
    let _keep = Shared::new();
    let slot = len.next_multiple_of(8);
    let (secs, got) = timed_run(
        1,
        1,
        place,
        // SAFETY: head/tail are atomics; the producer writes data bytes only in free space
        // (between head and tail + RING) and publishes them with a Release store of head.
        &|_| unsafe {
            let r = &*ring;
            let src = vec![7u8; len];
            let mut head = 0u64;
            let mut tail = 0u64;
            for _ in 0..n {
                while head + slot as u64 - tail > RING as u64 {
                    tail = r.tail.load(Ordering::Acquire);
                    std::hint::spin_loop();
                }
                let off = (head as usize) % RING;
                std::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    (*ring).data.as_mut_ptr().add(off),
                    len.min(RING - off),
                );
                head += slot as u64;
                r.head.store(head, Ordering::Release);
            }
        },
        // SAFETY: the consumer reads only bytes below head (Acquire) and frees them with a
        // Release store of tail.
        &|_| unsafe {
            let r = &*ring;
            let mut dst = vec![0u8; len];
            let mut tail = 0u64;
            let mut head = 0u64;
            for _ in 0..n {
                while head == tail {
                    head = r.head.load(Ordering::Acquire);
                    std::hint::spin_loop();
                }
                let off = (tail as usize) % RING;
                std::ptr::copy_nonoverlapping(
                    (*ring).data.as_ptr().add(off),
                    dst.as_mut_ptr(),
                    len.min(RING - off),
                );
                tail += slot as u64;
                r.tail.store(tail, Ordering::Release);
            }
            std::hint::black_box(&dst);
            n
        },
    )?;
    // SAFETY: unmaps the mapping created above; the children have exited.
    let _ = unsafe { nix::sys::mman::munmap(p, size) };
    anyhow::ensure!(got == n);
    Ok(n as f64 / secs)
}

/// Nanoseconds for a cache line to go from CPU 0 to CPU 1 and back (two threads pinned,
/// bouncing one counter): the machine's cross-core transfer cost, which on this VM changes
/// while it runs (the vCPUs move between host cores).
pub fn line_round_trip_ns() -> f64 {
    const ROUNDS: u64 = 100_000;
    let word = AtomicU64::new(0);
    let start = std::thread::scope(|s| {
        s.spawn(|| {
            crate::shared::pin(1);
            for i in 0..ROUNDS {
                while word.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                word.store(2 * i + 2, Ordering::Release);
            }
        });
        crate::shared::pin(0);
        let start = std::time::Instant::now();
        for i in 0..ROUNDS {
            word.store(2 * i + 1, Ordering::Release);
            while word.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
        }
        start
    });
    crate::shared::unpin_all();
    start.elapsed().as_nanos() as f64 / ROUNDS as f64
}
