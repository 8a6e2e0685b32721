mod common;
use common::*;
use mpqueue::{GetError, Queue, process};
use std::time::Duration;

#[test]
fn put_get_in_one_process() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u64> = Queue::new(0).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(q.qsize(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get_nowait().unwrap(), 2);
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
}

#[test]
fn spsc_child_to_parent_in_order() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u64> = Queue::new(0).unwrap();
    let c = process::fork({
        let q = q.clone();
        move || {
            for i in 0..100_000 {
                q.put(i).unwrap();
            }
            0
        }
    })
    .unwrap();
    for i in 0..100_000 {
        assert_eq!(q.get_timeout(Duration::from_secs(20)).unwrap(), i);
    }
    assert_eq!(c.join().unwrap(), 0);
}

#[test]
fn items_larger_than_the_ring_stream() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(4096).create().unwrap();
    let c = process::fork({
        let q = q.clone();
        move || {
            for i in 0..20u8 {
                q.put(vec![i; 100_000]).unwrap();
            }
            0
        }
    })
    .unwrap();
    for i in 0..20u8 {
        let v = q.get_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(v.len(), 100_000);
        assert!(v.iter().all(|&b| b == i));
    }
    assert_eq!(c.join().unwrap(), 0);
}

/// This process's resident shared memory (`RssShmem` in `/proc/self/status`), in bytes.
fn resident_shmem() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("RssShmem:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// A process that attaches to use a queue maps its whole ring then, the creator and a
/// forked child alike, so that no item waits for a page fault on the ring's first lap.
#[test]
fn attaching_maps_the_ring_in_advance() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    const RING: usize = 4 << 20;
    let before = resident_shmem();
    let q: Queue<u64> = Queue::builder().capacity_bytes(RING).create().unwrap();
    q.put(1).unwrap();
    assert!(
        resident_shmem() - before >= RING as u64,
        "the creator mapped {} bytes",
        resident_shmem() - before
    );
    let c = process::fork({
        let q = q.clone();
        move || {
            let before = resident_shmem();
            q.get().unwrap();
            // Mapped here: the whole ring, not just the pages the item touched.
            i32::from(resident_shmem() - before < RING as u64)
        }
    })
    .unwrap();
    assert_eq!(c.join().unwrap(), 0, "the child mapped less than the ring");
}
