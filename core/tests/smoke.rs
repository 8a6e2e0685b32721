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
