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
/// `recv_bytes`); mpqueue drops the unfinished item and the call ends with `Empty`.
#[test]
fn partial_item_of_an_exited_writer_does_not_hang_get() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("partial")
        .capacity_bytes(64 << 10)
        .create()
        .unwrap();
    let child = process::fork(|| {
        q.put(vec![3; 1 << 20]).unwrap(); // 16 ring-fulls: the feeder streams it
        // Exit in the middle of the item: once its first 64 KiB fill the ring.
        if !eventually(LONG, || write_pos("partial") >= 64 << 10) {
            return 1;
        }
        q.cancel_join_thread();
        0
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0, "the item never started");
    assert_eq!(q.get_timeout(Duration::from_secs(1)), Err(GetError::Empty));
    let s = snapshot("partial");
    assert_eq!(s.frames_discarded, 1);
    assert_eq!(s.lost, 1);
    assert_eq!(q.qsize(), 0);
    q.put(vec![4; 10]).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), vec![4; 10]);
}

fn signal(child: &process::Child, sig: i32) {
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    assert_eq!(unsafe { libc::kill(child.pid() as i32, sig) }, 0);
}

/// Issue 11, item 2: a producer whose feeder waits for room (nobody reads) must not keep
/// another producer from exiting: every wait in the exit flush, the write lock included,
/// counts against `flush_timeout`.
#[test]
fn exit_is_not_held_up_by_another_producer_waiting_for_room() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("lock-exit")
        .capacity_bytes(8192)
        .flush_timeout(Some(Duration::from_secs(2)))
        .create()
        .unwrap();
    let mut a = process::fork(|| {
        for _ in 0..1000 {
            q.put(vec![1; 200]).unwrap();
        }
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    // A has filled the ring and buffers the rest: its feeder waits for room.
    assert!(eventually(LONG, || {
        let s = snapshot("lock-exit");
        s.processes.iter().any(|p| p.buffered_items > 100)
    }));
    let mut b = process::fork(|| {
        q.put(vec![2; 200]).unwrap();
        0
    })
    .unwrap();
    let exited = b.join_timeout(Duration::from_secs(40)).unwrap();
    signal(&a, libc::SIGKILL);
    let _ = a.join_timeout(LONG);
    assert_eq!(
        exited,
        Some(0),
        "a producer hung at exit behind another's feeder"
    );
}

/// Issue 11, item 2: a write-lock holder stopped with SIGSTOP does not hang another
/// producer's exit either.
#[test]
fn exit_is_not_held_up_by_a_stopped_lock_holder() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("stopped-holder")
        .capacity_bytes(64 << 10)
        .flush_timeout(Some(Duration::from_secs(1)))
        .create()
        .unwrap();
    // A streams an item larger than the ring, so it holds the write lock while it waits
    // for room; then it is stopped.
    let mut a = process::fork(|| {
        q.put(vec![1; 1 << 20]).unwrap();
        0
    })
    .unwrap();
    assert!(eventually(LONG, || write_pos("stopped-holder") >= 64 << 10));
    signal(&a, libc::SIGSTOP);
    let mut b = process::fork(|| {
        q.put(vec![2; 100]).unwrap();
        0
    })
    .unwrap();
    let exited = b.join_timeout(Duration::from_secs(40)).unwrap();
    signal(&a, libc::SIGKILL);
    signal(&a, libc::SIGCONT);
    let _ = a.join_timeout(LONG);
    assert_eq!(
        exited,
        Some(0),
        "a producer hung at exit behind a stopped lock holder"
    );
    let s = snapshot("stopped-holder");
    assert!(s.lost >= 1, "B's dropped item is counted: {s:?}");
}

/// Issue 11, item 7: a consumer that times out in the middle of a live writer's item (the
/// writer is stopped) keeps what it read; its next `get` returns the whole item.
#[test]
fn a_stopped_writers_item_stays_whole_for_the_next_get() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("stopped-writer")
        .capacity_bytes(1 << 20)
        .create()
        .unwrap();
    let item: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut child = process::fork({
        let item = item.clone();
        let q = q.clone();
        move || {
            q.put(item).unwrap();
            0
        }
    })
    .unwrap();
    // The ring is full and the child waits for room inside the item: stop it there.
    assert!(eventually(LONG, || write_pos("stopped-writer") >= 1 << 20));
    signal(&child, libc::SIGSTOP);
    assert_eq!(
        q.get_timeout(Duration::from_millis(200)),
        Err(GetError::Empty)
    );
    signal(&child, libc::SIGCONT);
    let got = q
        .get_timeout(Duration::from_secs(30))
        .expect("the whole item");
    assert!(
        got == item,
        "the item came back changed ({} bytes)",
        got.len()
    );
    assert_eq!(child.join_timeout(LONG).unwrap(), Some(0));
    let s = snapshot("stopped-writer");
    assert_eq!(
        (s.puts, s.gets, s.lost, s.frames_discarded),
        (1, 1, 0, 0),
        "{s:?}"
    );
}
