//! `iter` ends when the queue is closed (from another thread too), `try_iter` drains what is
//! there, and `Bytes` items go through as a `Vec<u8>`'s bytes (issue 14).

mod common;
use common::*;
use mpqueue::{Bytes, GetError, Queue, process};
use std::time::Duration;

#[test]
fn iter_ends_when_another_thread_closes_the_queue() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u32> = Queue::new(0).unwrap();
    let child = process::fork(|| {
        for i in 0..100 {
            q.put(i).unwrap();
        }
        0
    })
    .unwrap();
    let tid = std::sync::atomic::AtomicI32::new(0);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            tid.store(
                nix::unistd::gettid().as_raw(),
                std::sync::atomic::Ordering::SeqCst,
            );
            q.iter().map(Result::unwrap).collect::<Vec<u32>>()
        });
        // All got, and the reader sleeps in the futex system call of its next `get`.
        assert!(eventually(Duration::from_secs(30), || {
            let t = tid.load(std::sync::atomic::Ordering::SeqCst);
            let call = std::fs::read_to_string(format!("/proc/self/task/{t}/syscall"));
            let s = mpqueue::observe::list().unwrap()[0].snapshot().unwrap();
            s.gets == 100 && call.is_ok_and(|c| c.starts_with(&format!("{} ", libc::SYS_futex)))
        }));
        // Closing wakes it and ends the iteration.
        q.close();
        assert_eq!(reader.join().unwrap(), (0..100).collect::<Vec<_>>());
    });
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(q.get(), Err(GetError::Closed));
}

#[test]
fn try_iter_drains_what_is_there_and_stops() {
    setup();
    let q: Queue<String> = Queue::new(0).unwrap();
    assert_eq!(q.try_iter().count(), 0);
    for w in ["a", "b", "c"] {
        q.put(w.to_string()).unwrap();
    }
    let got: Vec<String> = q.try_iter().map(Result::unwrap).collect();
    assert_eq!(got, ["a", "b", "c"]);
    assert!(q.empty());
}

#[test]
fn bytes_and_vecs_read_each_others_items() {
    setup();
    let name = "bytes-vec";
    let bytes: Queue<Bytes> = Queue::builder().name(name).create().unwrap();
    let vecs: Queue<Vec<u8>> = Queue::open(name).unwrap();
    bytes.put(Bytes::from(vec![7; 64])).unwrap();
    assert_eq!(vecs.get().unwrap(), vec![7; 64]);
    vecs.put(vec![1, 2, 3]).unwrap();
    assert_eq!(bytes.get().unwrap().into_vec(), vec![1, 2, 3]);
}
