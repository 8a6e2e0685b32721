//! `SimpleQueue` across real processes: put and get, `empty`, `close`, and a `put` that
//! blocks while the ring is full (issue 14).

mod common;
use common::*;
use mpqueue::{GetError, Queue, SimpleQueue, process};
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn items_of_four_processes_arrive_in_order_per_process() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: SimpleQueue<(u32, u32)> = SimpleQueue::new().unwrap();
    let children: Vec<_> = (0..4u32)
        .map(|p| {
            process::fork(|| {
                for i in 0..5000 {
                    q.put((p, i)).unwrap();
                }
                0
            })
            .unwrap()
        })
        .collect();
    let mut next = [0u32; 4];
    for _ in 0..20_000 {
        let (p, i) = q.get().unwrap();
        assert_eq!(i, next[p as usize]);
        next[p as usize] += 1;
    }
    for c in children {
        assert_eq!(c.join().unwrap(), 0);
    }
    assert!(q.empty());
}

#[test]
fn empty_and_close() {
    setup();
    let q: SimpleQueue<u8> = SimpleQueue::new().unwrap();
    assert!(q.empty());
    q.put(1).unwrap();
    assert!(!q.empty());
    q.close();
    assert!(q.put(2).unwrap_err().is_closed());
    assert_eq!(q.get(), Err(GetError::Closed));
}

/// A 4 KiB ring holds two 1500-byte items: the third `put` blocks in the writing
/// process itself (there is no feeder) until the parent gets one.
#[test]
fn put_blocks_while_the_ring_is_full() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: SimpleQueue<Vec<u8>> =
        SimpleQueue::from_builder(Queue::builder().capacity_bytes(4096)).unwrap();
    let done = SharedBytes::new(8);
    let mut child = process::fork(|| {
        for i in 0..6u8 {
            q.put(vec![i; 1500]).unwrap();
            done.word(0).store(u64::from(i) + 1, SeqCst);
        }
        0
    })
    .unwrap();
    let pid = child.pid();
    // The child sleeps in a futex wait (for room) with 2 puts done.
    let blocked = || {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|c| c.starts_with(&format!("{} ", libc::SYS_futex)))
    };
    assert!(eventually(LONG, || done.word(0).load(SeqCst) == 2 && blocked()));
    assert_eq!(done.word(0).load(SeqCst), 2);
    for i in 0..6u8 {
        assert_eq!(q.get().unwrap(), vec![i; 1500]);
    }
    assert_eq!(child.join_timeout(LONG).unwrap(), Some(0));
    assert_eq!(done.word(0).load(SeqCst), 6);
}

#[test]
fn a_timed_put_on_a_full_ring_gives_the_item_back_uncounted() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: SimpleQueue<Vec<u8>> =
        SimpleQueue::from_builder(Queue::builder().label("simple-timed").capacity_bytes(4096))
            .unwrap();
    q.put(vec![1; 3000]).unwrap();
    let puts = || {
        mpqueue::observe::list()
            .unwrap()
            .iter()
            .filter_map(|r| r.snapshot().ok())
            .find(|s| s.name == "simple-timed")
            .map(|s| (s.puts, s.lost))
            .unwrap()
    };
    let e = q
        .put_timeout(vec![2; 3000], Duration::from_millis(50))
        .unwrap_err();
    assert!(e.is_full());
    assert_eq!(e.into_inner(), vec![2; 3000]);
    assert_eq!(puts(), (1, 0)); // not counted, nothing lost
    // A reader in another process frees the room: the next timed put goes in.
    let mut child = process::fork(|| i32::from(q.get().unwrap() != vec![1; 3000])).unwrap();
    q.put_timeout(vec![3; 3000], LONG).unwrap();
    assert_eq!(child.join_timeout(LONG).unwrap(), Some(0));
    assert_eq!(q.get().unwrap(), vec![3; 3000]);
    assert_eq!(puts(), (2, 0));
}

/// CPython's `TestSimpleQueue.test_empty`: `put` is synchronous, so a child's `empty()`
/// right after its own `put` sees the item, and the parent sees what the child put.
#[test]
fn cpython_test_empty() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: SimpleQueue<bool> = SimpleQueue::new().unwrap();
    assert!(q.empty());
    let child = process::fork(|| {
        q.put(q.empty()).unwrap(); // true: nothing was there
        q.put(q.empty()).unwrap(); // false: the first item is
        0
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert!(!q.empty());
    assert!(q.get().unwrap());
    assert!(!q.get().unwrap());
    assert!(q.empty());
}
