//! The shared-memory counters, read through `mpqueue::observe` while real processes work.

mod common;
use common::*;
use mpqueue::observe::{self, HistogramSnapshot, Role, Snapshot};
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

#[test]
fn killed_process_shows_dead_and_its_counts_stay() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u32> = Queue::builder().label("killed").create().unwrap();
    let ready: Queue<u8> = Queue::new(0).unwrap();
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
    let dead = s.processes.iter().find(|p| p.pid == pid).unwrap();
    assert!(!dead.alive);
    assert_eq!(dead.puts, 5);
    assert_eq!(s.puts, 5);
    // A new attach reaps the dead slot: the counts fold into the totals and stay.
    let again: Queue<u32> = Queue::builder().label("killed-2").create().unwrap();
    drop(again);
    for i in 0..5 {
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
