//! The shared-memory counters, read through `mpqueue::observe` while real processes work.

mod common;
use common::*;
use mpqueue::observe::{self, HistogramSnapshot, Liveness, Role, Snapshot};
use mpqueue::{GetError, Queue, process};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn snap(label: &str) -> Snapshot {
    observe::list()
        .unwrap()
        .iter()
        .filter_map(|r| r.snapshot().ok())
        .find(|s| s.name == label)
        .unwrap_or_else(|| panic!("queue {label} not visible"))
}

#[test]
fn exact_totals_while_processes_come_and_go() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<u32> = Queue::builder()
        .label("totals")
        .max_processes(4)
        .create()
        .unwrap();
    // 12 short-lived producers through 4 slots: retired slots are reused and their counts
    // fold into the totals.
    for round in 0..4 {
        let kids: Vec<_> = (0..3)
            .map(|k| {
                process::fork(|| {
                    for i in 0..(100 * (round + 1) + k) {
                        q.put(i).unwrap();
                    }
                    0
                })
                .unwrap()
            })
            .collect();
        for k in kids {
            assert_eq!(k.join().unwrap(), 0);
        }
    }
    let expected_puts: u64 = (0..4)
        .map(|r| (0..3).map(|k| 100 * (r + 1) + k).sum::<u64>())
        .sum();
    // Two consumer processes take a known number each.
    let take = |n: u64| {
        let q = &q;
        process::fork(move || {
            for _ in 0..n {
                q.get_timeout(LONG).unwrap();
            }
            0
        })
        .unwrap()
    };
    let (c1, c2) = (take(1000), take(500));
    assert_eq!(c1.join().unwrap(), 0);
    assert_eq!(c2.join().unwrap(), 0);
    let s = snap("totals");
    assert_eq!(s.puts, expected_puts);
    assert_eq!(s.gets, 1500);
    assert_eq!(s.size, expected_puts - 1500);
    assert_eq!(s.size as usize, q.qsize());
    // Every u32 below 251 encodes in 1 byte, larger ones in 3 (varint).
    assert!(s.bytes_got >= 1500 && s.bytes_got <= 3 * 1500);
    assert!(s.bytes_put >= expected_puts && s.bytes_put <= 3 * expected_puts);
    assert_eq!(s.processes.len(), 1, "only the parent is still attached");
    assert_eq!(s.processes[0].pid, std::process::id());
    assert!(s.alive);
}

#[test]
fn full_and_empty_events_for_a_known_sequence() {
    setup();
    let q: Queue<u8> = Queue::builder()
        .label("events")
        .maxsize(2)
        .create()
        .unwrap();
    assert_eq!(q.get_nowait(), Err(GetError::Empty)); // empty 1
    assert_eq!(
        q.get_timeout(Duration::from_millis(20)),
        Err(GetError::Empty)
    ); // empty 2, timeout 1
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(q.put_nowait(3).is_err()); // full 1
    assert!(q.put_nowait(3).is_err()); // full 2
    assert!(q.put_timeout(3, Duration::from_millis(20)).is_err()); // full 3, timeout 1
    q.get().unwrap(); // no wait: not an event
    q.put(3).unwrap(); // room: not an event
    let s = snap("events");
    assert_eq!((s.full_events, s.empty_events), (3, 2));
    assert_eq!((s.put_timeouts, s.get_timeouts), (1, 1));
    assert_eq!((s.puts, s.gets, s.size, s.maxsize), (3, 1, 2, 2));
    // Only the calls that waited are observed in the histograms.
    assert_eq!(s.put_blocked.count, 1);
    assert_eq!(s.get_blocked.count, 1);
    assert_eq!(s.processes[0].role, Role::Both);
}

/// The bucket that holds `ns`, from the snapshot's own bounds.
fn bucket_for(ns: u64) -> usize {
    HistogramSnapshot::bounds()
        .iter()
        .position(|&b| ns <= b)
        .unwrap()
}

#[test]
fn a_100ms_wait_lands_in_its_bucket() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u8> = Queue::builder().label("hist").create().unwrap();
    let child = process::fork(|| {
        std::thread::sleep(Duration::from_millis(100));
        q.put(1).unwrap();
        0
    })
    .unwrap();
    let t = Instant::now();
    assert_eq!(q.get().unwrap(), 1);
    let elapsed = t.elapsed().as_nanos() as u64;
    assert_eq!(child.join().unwrap(), 0);
    let h = snap("hist").get_blocked;
    assert_eq!(h.count, 1);
    // The observed wait is within what the test measured around the call, and it sits in
    // the bucket that its own value belongs to.
    assert!(
        h.sum_ns <= elapsed && h.sum_ns >= 50_000_000,
        "{} vs {elapsed}",
        h.sum_ns
    );
    let b = bucket_for(h.sum_ns);
    assert_eq!(h.buckets[b], 1);
    assert_eq!(h.buckets.iter().sum::<u64>(), 1);
    assert!((16..=27).contains(&b)); // 100 ms is in bucket 17 (65.5–134 ms) on an idle machine
    let p50 = h.quantile(0.5).unwrap();
    assert!(p50.as_nanos() as u64 >= h.sum_ns);
}

#[test]
fn feeder_depth_is_visible_while_nobody_reads() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .label("depth")
        .capacity_bytes(4096)
        .flush_timeout(Some(Duration::from_millis(200)))
        .create()
        .unwrap();
    let (go, done) = (Queue::<u8>::new(0).unwrap(), Queue::<u8>::new(0).unwrap());
    let child = process::fork(|| {
        for _ in 0..10 {
            q.put(vec![9; 1000]).unwrap();
        }
        done.put(0).unwrap();
        go.get_timeout(LONG).unwrap();
        0
    })
    .unwrap();
    done.get_timeout(LONG).unwrap();
    // Each item encodes to 1003 bytes (a 3-byte length), a 1016-byte record: 4 fit the
    // 4 KiB ring, the other 6 wait in the child's buffer.
    let s = snap("depth");
    let p = s.processes.iter().find(|p| p.pid == child.pid()).unwrap();
    assert_eq!(p.role, Role::Producer);
    assert_eq!(p.puts, 10);
    assert_eq!(p.buffered_items, 6);
    assert_eq!(p.buffered_bytes, 6 * 1003);
    assert!(p.alive);
    assert!(p.heartbeat_age.unwrap() < LONG);
    assert_eq!(s.size, 10);
    go.put(1).unwrap();
    for _ in 0..10 {
        q.get_timeout(LONG).unwrap();
    }
    assert_eq!(child.join().unwrap(), 0);
    let s = snap("depth");
    assert_eq!((s.puts, s.gets, s.size, s.lost), (10, 10, 0, 0));
}

/// Flow control: a producer that outruns a consumer who keeps reading waits for it instead
/// of piling its whole output up in its buffer (as Python's feeder would). With nobody
/// reading, `put` still buffers (above, and `conformance.rs`).
#[test]
fn producer_outrunning_a_reader_keeps_its_buffer_short() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    const N: u32 = 100_000;
    // 16-byte records: 4096 of them fill the 64 KiB ring.
    let q: Queue<u32> = Queue::builder()
        .label("flow")
        .capacity_bytes(64 << 10)
        .create()
        .unwrap();
    let child = process::fork(|| {
        for i in 0..N {
            q.put(i).unwrap();
        }
        0
    })
    .unwrap();
    let mut peak = 0;
    for i in 0..N {
        assert_eq!(q.get_timeout(LONG), Ok(i));
        // Slower than the producer: a few microseconds of work per item.
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(3) {
            std::hint::spin_loop();
        }
        if i % 1000 == 0 {
            let s = snap("flow");
            if let Some(p) = s.processes.iter().find(|p| p.pid == child.pid()) {
                peak = peak.max(p.buffered_items);
            }
        }
    }
    assert_eq!(child.join().unwrap(), 0);
    // Without flow control the producer is done within milliseconds, most of its items
    // still buffered; with it, the buffer stays near 1024 items (a long stall of this
    // reader lets it grow while the stall lasts, hence the wide margin).
    assert!(peak < u64::from(N) / 2, "{peak} items buffered at the peak");
}

/// A killed process stays visible as dead, with its counts, until its slot is reaped: with
/// every slot of the queue taken (the parent's and the dead child's, `max_processes(2)`),
/// the next process to attach reaps the dead one, whose counts fold into the totals, and
/// gets its slot.
#[test]
fn a_heartbeat_is_the_latest_put_or_get() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u32> = Queue::builder().label("heartbeat").create().unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 1);
    let me = |s: &Snapshot| {
        let p = s.processes.iter().find(|p| p.pid == std::process::id());
        p.cloned().unwrap()
    };
    // Wait until the last get is measurably old, then put only: the heartbeat follows the
    // put, not the get (nor the attach).
    let before = loop {
        let p = me(&snap("heartbeat"));
        if p.last_get_age.unwrap() >= Duration::from_millis(200) {
            break p;
        }
        std::thread::yield_now();
    };
    assert_eq!(
        before.heartbeat_age,
        before.last_get_age.min(before.last_put_age)
    );
    q.put(2).unwrap();
    let after = me(&snap("heartbeat"));
    assert!(after.last_put_age.unwrap() < after.last_get_age.unwrap());
    assert_eq!(after.heartbeat_age, after.last_put_age);
    assert!(after.heartbeat_age.unwrap() < before.heartbeat_age.unwrap());
}

#[test]
fn killed_process_shows_dead_until_an_attach_reaps_its_slot() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u32> = Queue::builder()
        .label("killed")
        .max_processes(2)
        .create()
        .unwrap();
    let (ready, attached, go) = (
        Queue::<u8>::new(0).unwrap(),
        Queue::<u8>::new(0).unwrap(),
        Queue::<u8>::new(0).unwrap(),
    );
    let child = process::fork(|| {
        for i in 0..5 {
            q.put(i).unwrap();
        }
        ready.put(0).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    ready.get_timeout(LONG).unwrap();
    child.kill(libc::SIGKILL).unwrap();
    let pid = child.pid();
    assert!(matches!(
        child.join(),
        Err(mpqueue::ChildError::Signaled { signal: 9, .. })
    ));
    let s = snap("killed");
    assert_eq!(s.processes.len(), 2, "both slots are taken");
    let dead = s.processes.iter().find(|p| p.pid == pid).unwrap();
    assert!(!dead.alive);
    assert_eq!(dead.puts, 5);
    assert_eq!(s.puts, 5);
    // No slot is free to reserve for this child at fork: its first use of the queue
    // attaches it, which reaps the dead process to make room.
    let newcomer = process::fork(|| {
        let code = match q.get_timeout(LONG) {
            Ok(0) => 0,
            Ok(_) => 1,
            Err(_) => 2, // no slot: the dead one was not reaped
        };
        attached.put(code).unwrap();
        go.get_timeout(LONG).unwrap();
        0
    })
    .unwrap();
    assert_eq!(
        attached.get_timeout(LONG),
        Ok(0),
        "1: wrong item, 2: the newcomer could not attach"
    );
    let s = snap("killed");
    assert!(
        s.processes.iter().all(|p| p.pid != pid),
        "the dead process was reaped: {:?}",
        s.processes
    );
    let newcomer_slot = s.processes.iter().find(|p| p.pid == newcomer.pid());
    assert_eq!(newcomer_slot.map(|p| p.gets), Some(1), "{:?}", s.processes);
    assert_eq!(s.processes.len(), 2);
    // The dead process's puts are in the retired totals: nothing went backwards.
    assert_eq!((s.puts, s.gets, s.size), (5, 1, 4));
    go.put(1).unwrap();
    assert_eq!(newcomer.join().unwrap(), 0);
    for i in 1..5 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    let s = snap("killed");
    assert_eq!((s.puts, s.gets, s.size), (5, 5, 0));
}

#[test]
fn snapshots_never_show_more_gets_than_puts() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<u64> = Queue::builder()
        .label("consistent")
        .maxsize(64)
        .create()
        .unwrap();
    let producers: Vec<_> = (0..2)
        .map(|_| {
            process::fork(|| {
                for i in 0..100_000 {
                    q.put(i).unwrap();
                }
                0
            })
            .unwrap()
        })
        .collect();
    let consumer = process::fork(|| {
        for _ in 0..200_000 {
            q.get_timeout(LONG).unwrap();
        }
        0
    })
    .unwrap();
    let r = observe::list()
        .unwrap()
        .into_iter()
        .find(|r| r.snapshot().is_ok_and(|s| s.name == "consistent"))
        .unwrap();
    let mut last = r.snapshot().unwrap();
    let mut n = 0;
    while last.gets < 200_000 && n < 200_000 {
        let s = r.snapshot().unwrap();
        assert!(s.gets <= s.puts, "gets {} > puts {}", s.gets, s.puts);
        assert!(s.size <= 64 + 2, "size {} over maxsize", s.size);
        assert!(
            s.puts >= last.puts && s.gets >= last.gets,
            "counters went backwards"
        );
        last = s;
        n += 1;
    }
    for p in producers {
        assert_eq!(p.join().unwrap(), 0);
    }
    assert_eq!(consumer.join().unwrap(), 0);
    let s = r.snapshot().unwrap();
    assert_eq!((s.puts, s.gets), (200_000, 200_000));
}

#[test]
fn rates_between_snapshots() {
    setup();
    let q: Queue<u8> = Queue::builder().label("rates").create().unwrap();
    let a = snap("rates");
    for _ in 0..100 {
        q.put(1).unwrap();
    }
    std::thread::sleep(Duration::from_millis(10));
    let b = snap("rates");
    let r = b.rate_since(&a);
    let secs = (b.taken_ns - a.taken_ns) as f64 / 1e9;
    assert!((r.puts - 100.0 / secs).abs() < 1e-6);
    assert_eq!(r.gets, 0.0);
    assert_eq!(a.rate_since(&b).puts, 0.0, "never negative");
}

#[test]
fn corrupt_files_are_errors_for_their_entry_only() {
    let dir = setup();
    let _q: Queue<u8> = Queue::builder().label("healthy").create().unwrap();
    let bad = [
        ("q.truncated.stats", vec![0u8; 10]),
        ("q.garbage.stats", vec![0xEEu8; 70_656]),
        ("a.1.2.3.stats", b"MPQSTAT\0".repeat(9000)),
    ];
    for (f, bytes) in &bad {
        std::fs::write(dir.join(f), bytes).unwrap();
    }
    std::os::unix::fs::symlink("/etc/passwd", dir.join("q.evil.stats")).unwrap();
    let list = observe::list().unwrap();
    let results: Vec<_> = list
        .iter()
        .map(|r| (r.name().to_string(), r.snapshot()))
        .collect();
    assert!(
        results
            .iter()
            .any(|(_, s)| s.as_ref().is_ok_and(|s| s.name == "healthy"))
    );
    for name in ["truncated", "garbage", "evil"] {
        let (_, r) = results.iter().find(|(n, _)| n == name).unwrap();
        assert!(
            matches!(r, Err(mpqueue::Error::Corrupt { .. })),
            "{name}: {r:?}"
        );
    }
    // cleanup() leaves files it cannot parse alone (they may be someone else's).
    let removed = observe::cleanup().unwrap();
    assert!(
        removed
            .iter()
            .all(|p| !p.to_string_lossy().contains("garbage"))
    );
    for f in [
        "q.truncated.stats",
        "q.garbage.stats",
        "a.1.2.3.stats",
        "q.evil.stats",
    ] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
}

#[test]
fn stale_queues_are_reported_and_cleaned_up() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    // A child creates a named queue and is killed: nobody detaches it.
    let child = process::fork(|| {
        let q: Queue<u8> = Queue::builder().name("orphan").create().unwrap();
        q.put(1).unwrap();
        std::mem::forget(q);
        // SAFETY: kill ourselves without any clean-up, as the OOM killer would.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        0
    })
    .unwrap();
    assert!(child.join().is_err());
    let r = observe::list()
        .unwrap()
        .into_iter()
        .find(|r| r.name() == "orphan")
        .unwrap();
    let s = r.snapshot().unwrap();
    assert!(!s.alive);
    assert!(s.processes.iter().all(|p| !p.alive));
    let removed = observe::cleanup().unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(
        observe::list()
            .unwrap()
            .iter()
            .all(|r| r.name() != "orphan")
    );
    assert!(matches!(
        Queue::<u8>::open("orphan"),
        Err(mpqueue::Error::NotFound { .. })
    ));
}

#[test]
fn counters_off_keeps_sizes_and_liveness() {
    setup();
    let q: Queue<u8> = Queue::builder()
        .label("quiet")
        .stats(false)
        .create()
        .unwrap();
    q.put(1).unwrap();
    assert!(q.get_nowait().is_ok());
    assert!(q.get_nowait().is_err());
    let s = snap("quiet");
    assert_eq!((s.puts, s.gets, s.size), (1, 1, 0));
    assert_eq!(s.empty_events, 0, "per-operation counters are off");
    assert!(s.alive);
}

/// Runs `f` in a child process (exit code 0 = passed) and fails if it does not end within
/// `limit`: observers that hang on a hostile file are killed, and the test says what hung.
fn in_child_within(what: &str, limit: Duration, f: impl FnOnce() -> i32) {
    let mut child = process::fork(f).unwrap();
    match child.join_timeout(limit) {
        Ok(Some(0)) => {}
        Ok(Some(code)) => panic!("{what}: the child failed with exit code {code}"),
        Ok(None) => {
            let _ = child.kill(libc::SIGKILL);
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Writes `bytes` at `offset` of `path` (as another process of the same user could).
fn poke(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

#[test]
fn fifos_devices_and_oversized_files_are_refused_without_reading_them() {
    let dir = setup();
    let _w = watchdog(Duration::from_secs(120));
    let _q: Queue<u8> = Queue::builder().name("beside").create().unwrap();
    let fifo = dir.join("q.f.stats");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", dir.join("q.z.stats")).unwrap();
    // Sparse, so it costs nothing unless someone reads it all.
    std::fs::File::create(dir.join("q.huge.stats"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    // Bounded: reading the FIFO blocks for ever, reading /dev/zero never ends.
    in_child_within(
        "observing a FIFO, a symlink to /dev/zero and a 64 MiB file",
        Duration::from_secs(30),
        || {
            let list = observe::list().unwrap();
            for r in &list {
                match (r.name(), r.snapshot()) {
                    ("beside", Ok(s)) if s.alive => {}
                    ("f" | "z" | "huge", Err(mpqueue::Error::Corrupt { .. })) => {}
                    _ => return 2,
                }
            }
            if list.len() != 4 {
                return 3;
            }
            match observe::cleanup() {
                Ok(removed) if removed.is_empty() => 0,
                _ => 4,
            }
        },
    );
    // Not theirs to remove: the files are still there.
    for f in ["q.f.stats", "q.z.stats", "q.huge.stats", "q.beside.stats"] {
        assert!(
            std::fs::symlink_metadata(dir.join(f)).is_ok(),
            "{f} removed"
        );
    }
    for f in ["q.f.stats", "q.z.stats", "q.huge.stats"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
}

#[test]
fn a_stats_file_shrinking_under_observers_is_an_error_not_a_crash() {
    let dir = setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<u32> = Queue::builder().name("original").create().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    // A copy no queue process maps, so only the observers are exposed to the truncation.
    let copy = dir.join("q.shrinking.stats");
    std::fs::copy(dir.join("q.original.stats"), &copy).unwrap();
    let bytes = std::fs::read(&copy).unwrap();
    let progress = SharedBytes::new(4096);
    let mut observer = process::fork(|| {
        let r = observe::list()
            .unwrap()
            .into_iter()
            .find(|r| r.name() == "shrinking")
            .unwrap();
        let (mut ok, mut failed) = (0u64, 0u64);
        while ok < 200 || failed < 200 {
            match r.snapshot() {
                Ok(s) if s.puts == 3 => ok += 1,
                Ok(_) => return 2,
                Err(_) => failed += 1,
            }
            progress
                .word(0)
                .store(ok, std::sync::atomic::Ordering::Relaxed);
            progress
                .word(1)
                .store(failed, std::sync::atomic::Ordering::Relaxed);
        }
        0
    })
    .unwrap();
    // Another process of the same user truncates the file and writes it back, again and
    // again, while the observer reads it.
    let f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
    let status = loop {
        use std::os::unix::fs::FileExt;
        if let Some(status) = observer.try_wait().unwrap() {
            break status;
        }
        f.set_len(0).unwrap();
        f.write_all_at(&bytes, 0).unwrap();
    };
    assert_eq!(
        status,
        process::Status::Code(0),
        "the observer died (SIGBUS is signal 7) after {} good and {} failed snapshots",
        progress.word(0).load(std::sync::atomic::Ordering::Relaxed),
        progress.word(1).load(std::sync::atomic::Ordering::Relaxed)
    );
    std::fs::remove_file(&copy).unwrap();
}

/// A stats file like `q.NAME.stats` of a real queue but with `slots` process slots, every
/// one ACTIVE and owned by this (live) process.
fn forged_stats(dir: &std::path::Path, name: &str, slots: usize) -> std::path::PathBuf {
    use mpqueue::layout_info::{SLOT_LEN, STATS_HEADER_LEN};
    let _q: Queue<u8> = Queue::builder().name("template").create().unwrap();
    let header = std::fs::read(dir.join("q.template.stats")).unwrap();
    let len = STATS_HEADER_LEN + (slots + 1) * SLOT_LEN;
    let mut bytes = vec![0u8; len];
    bytes[..STATS_HEADER_LEN].copy_from_slice(&header[..STATS_HEADER_LEN]);
    let put = |b: &mut [u8], off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut bytes, 16, len as u64); // total_len
    put(&mut bytes, 24, slots as u64 | (SLOT_LEN as u64) << 32); // slot_count, slot_len
    // Name: the real one's with the same length ("template" and the forged names are 8 bytes).
    assert_eq!(name.len(), 8);
    bytes[96..104].copy_from_slice(name.as_bytes());
    let own = &header[STATS_HEADER_LEN + SLOT_LEN..STATS_HEADER_LEN + 2 * SLOT_LEN];
    for i in 1..=slots {
        let at = STATS_HEADER_LEN + i * SLOT_LEN;
        bytes[at..at + SLOT_LEN].copy_from_slice(own);
    }
    let path = dir.join(format!("q.{name}.stats"));
    std::fs::write(&path, &bytes).unwrap();
    path
}

#[test]
fn huge_slot_counts_and_a_toggling_retire_sequence_do_not_stall_observers() {
    let dir = setup();
    let _w = watchdog(Duration::from_secs(300));
    let many = forged_stats(dir, "slots64k", 65_536);
    let max = forged_stats(dir, "slots4k_", 4096);
    // A writer keeps a retirement "in progress" and changes the sequence all the time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let toggler = {
        let stop = stop.clone();
        let (many, max) = (many.clone(), max.clone());
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                poke(&many, 400, &seq.to_le_bytes());
                poke(&max, 400, &seq.to_le_bytes());
                // Far more often than a copy of either file takes, without hogging a CPU
                // that the tests running beside this one need.
                std::thread::sleep(Duration::from_micros(20));
            }
        })
    };
    // Bounded: before the fix one snapshot of either file took minutes.
    in_child_within("snapshots of forged files", Duration::from_secs(60), || {
        let list = observe::list().unwrap();
        let find = |n: &str| list.iter().find(|r| r.name() == n).unwrap().snapshot();
        // More slots than any queue can have (Builder's max_processes <= 4096).
        if !matches!(find("slots64k"), Err(mpqueue::Error::Corrupt { .. })) {
            return 2;
        }
        // The largest legal file, its sequence never settling: a best-effort read.
        match find("slots4k_") {
            Ok(s) if s.processes.len() == 4096 && s.alive => 0,
            _ => 3,
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    toggler.join().unwrap();
    for p in [many, max] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn processes_of_another_pid_namespace_are_never_taken_for_dead() {
    let dir = setup();
    let _w = watchdog(Duration::from_secs(60));
    // A child makes a named queue and is killed: nobody detaches it.
    let child = process::fork(|| {
        let q: Queue<u8> = Queue::builder().name("elsewhere").create().unwrap();
        std::mem::forget(q);
        // SAFETY: dies without clean-up, as a crash would.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        0
    })
    .unwrap();
    assert!(child.join().is_err());
    let stats = dir.join("q.elsewhere.stats");
    // Its slot says it ran in another pid namespace (a container sharing /dev/shm): its
    // pid means nothing here, so it may be alive.
    let ns_at = (1024 + 1024 + 48) as u64;
    let own_ns = std::fs::read(&stats).unwrap()[ns_at as usize..ns_at as usize + 8].to_vec();
    poke(&stats, ns_at, &0x7fff_fff0u64.to_le_bytes());
    let r = observe::list()
        .unwrap()
        .into_iter()
        .find(|r| r.name() == "elsewhere")
        .unwrap();
    let s = r.snapshot().unwrap();
    assert!(s.alive, "a process of another namespace is not known dead");
    assert!(s.processes.iter().all(|p| p.alive));
    assert_eq!(s.processes[0].liveness, Liveness::Unknown);
    assert_eq!(s.liveness(), Liveness::Unknown);
    assert!(observe::cleanup().unwrap().is_empty());
    assert!(stats.exists());
    // Recorded in this namespace, the same slot is known dead: the queue is stale.
    poke(&stats, ns_at, &own_ns);
    let s = r.snapshot().unwrap();
    assert!(!s.alive);
    assert_eq!(s.processes[0].liveness, Liveness::Dead);
    assert_eq!(s.liveness(), Liveness::Dead);
    assert_eq!(observe::cleanup().unwrap().len(), 2);
}

#[test]
fn without_a_readable_proc_nothing_is_known_dead_or_removed() {
    let dir = setup();
    let _w = watchdog(Duration::from_secs(60));
    let child = process::fork(|| {
        let q: Queue<u8> = Queue::builder().name("dead-owner").create().unwrap();
        std::mem::forget(q);
        // SAFETY: dies without clean-up, as a crash would.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        0
    })
    .unwrap();
    assert!(child.join().is_err());
    let live: Queue<u8> = Queue::builder().name("live-owner").create().unwrap();
    let r = |name: &str| {
        observe::list()
            .unwrap()
            .into_iter()
            .find(|r| r.name() == name)
            .unwrap()
    };
    assert_eq!(
        r("dead-owner").snapshot().unwrap().liveness(),
        Liveness::Dead
    );
    // A child in a mount namespace of its own, with an empty /proc (as in a container that
    // does not mount it, or with no descriptor left to read it): nothing can be known.
    in_child_within("observing without /proc", Duration::from_secs(30), || {
        // SAFETY: plain system calls on constant, valid arguments; the child is
        // single-threaded (only the forking thread exists in it).
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return 10;
            }
            // Private first, so the empty /proc below stays in this namespace.
            let root = c"/".as_ptr();
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                root,
                std::ptr::null(),
                flags,
                std::ptr::null(),
            ) != 0
            {
                return 11;
            }
            let (tmpfs, proc_) = (c"tmpfs".as_ptr(), c"/proc".as_ptr());
            if libc::mount(tmpfs, proc_, tmpfs, 0, std::ptr::null()) != 0 {
                return 12;
            }
        }
        let (dead, alive) = (r("dead-owner").snapshot(), r("live-owner").snapshot());
        let unknown = |s: &Result<Snapshot, mpqueue::Error>| {
            s.as_ref().is_ok_and(|s| {
                s.alive
                    && s.liveness() == Liveness::Unknown
                    && s.processes.iter().all(|p| p.liveness == Liveness::Unknown)
            })
        };
        if !unknown(&dead) || !unknown(&alive) {
            return 2;
        }
        match observe::cleanup() {
            Ok(removed) if removed.is_empty() => 0,
            _ => 3,
        }
    });
    assert!(dir.join("q.dead-owner.stats").exists() && dir.join("q.dead-owner.data").exists());
    // With /proc, the dead owner's queue is stale and goes; the live one stays.
    assert_eq!(observe::cleanup().unwrap().len(), 2);
    assert!(r("live-owner").snapshot().unwrap().alive);
    drop(live);
}

/// Threads of one process getting at once: each get is counted, once (the count is made
/// under the read lock, the only writer of the slot's `gets`).
#[test]
fn gets_of_many_threads_of_one_process_are_all_counted() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<u32> = Queue::builder().label("threads").create().unwrap();
    let n = 200_000u32;
    for i in 0..n {
        q.put(i).unwrap();
    }
    // Exactly n gets between them (a get_nowait could give up on a loaded machine while
    // another thread holds the read lock).
    let taken = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                    q.get_timeout(LONG).unwrap();
                }
            });
        }
    });
    let s = snap("threads");
    assert_eq!((s.puts, s.gets, s.size), (n as u64, n as u64, 0));
}
