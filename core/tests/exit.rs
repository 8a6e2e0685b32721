//! Exit paths: a process that exits with items still buffered flushes them, gives up after
//! the flush timeout when nobody reads (never hangs), or drops them at once after
//! `cancel_join_thread` — and says how many.

mod common;
use common::*;
use mpqueue::{GetError, JoinError, Queue, observe, process};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn snapshot(label: &str) -> observe::Snapshot {
    observe::list()
        .unwrap()
        .iter()
        .filter_map(|r| r.snapshot().ok())
        .find(|s| s.name == label)
        .expect("queue visible")
}

#[test]
fn exit_with_unread_items_gives_up_after_flush_timeout() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .label("stalled-exit")
        .capacity_bytes(4096)
        .flush_timeout(Some(Duration::from_millis(300)))
        .create()
        .unwrap();
    let mut child = process::fork(|| {
        for _ in 0..10 {
            q.put(vec![1; 3000]).unwrap();
        }
        0 // exits without reading or joining: the fork helper flushes, bounded
    })
    .unwrap();
    assert_eq!(
        child.join_timeout(LONG).unwrap(),
        Some(0),
        "child hung at exit"
    );
    let s = snapshot("stalled-exit");
    assert_eq!(
        (s.puts, s.lost),
        (10, 9),
        "one item fits the ring, nine were dropped"
    );
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get_timeout(LONG).unwrap().len(), 3000);
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
}

#[test]
fn join_thread_reports_a_stalled_flush() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .capacity_bytes(4096)
        .flush_timeout(Some(Duration::from_millis(200)))
        .create()
        .unwrap();
    let child = process::fork(|| {
        for _ in 0..3 {
            q.put(vec![1; 3000]).unwrap();
        }
        q.close();
        match q.join_thread() {
            Err(JoinError::Stalled { dropped: 2 }) => 0,
            other => {
                eprintln!("{other:?}");
                1
            }
        }
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn exit_flushes_everything_when_someone_reads() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(4096).create().unwrap();
    let child = process::fork(|| {
        for i in 0..200u32 {
            q.put(i.to_le_bytes().repeat(500)).unwrap();
        }
        0
    })
    .unwrap();
    for i in 0..200u32 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i.to_le_bytes().repeat(500));
    }
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn cancel_join_thread_drops_and_counts() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .label("cancelled")
        .capacity_bytes(4096)
        .flush_timeout(None) // would wait for ever without the cancel
        .create()
        .unwrap();
    let mut child = process::fork(|| {
        for _ in 0..5 {
            q.put(vec![2; 3000]).unwrap();
        }
        q.cancel_join_thread();
        0
    })
    .unwrap();
    assert_eq!(child.join_timeout(LONG).unwrap(), Some(0));
    let s = snapshot("cancelled");
    assert_eq!((s.puts, s.lost), (5, 4));
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get_timeout(LONG).unwrap(), vec![2; 3000]);
}

/// Python hangs for ever here (a partial message in the pipe, `get(timeout)` blocked in
/// `recv_bytes`); mpqueue drops the unfinished item and times out on time.
#[test]
fn partial_item_of_an_exited_writer_does_not_hang_get() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .label("partial")
        .capacity_bytes(64 << 10)
        .create()
        .unwrap();
    let child = process::fork(|| {
        q.put(vec![3; 1 << 20]).unwrap(); // 16 ring-fulls: the feeder streams it
        std::thread::sleep(Duration::from_millis(100));
        q.cancel_join_thread();
        0
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
    let t = std::time::Instant::now();
    assert_eq!(q.get_timeout(Duration::from_secs(1)), Err(GetError::Empty));
    assert!(t.elapsed() < Duration::from_secs(20));
    let s = snapshot("partial");
    assert_eq!(s.frames_discarded, 1);
    assert_eq!(s.lost, 1);
    assert_eq!(q.qsize(), 0);
    q.put(vec![4; 10]).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), vec![4; 10]);
}
