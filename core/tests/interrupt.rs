//! `interruptible`: a check asked while a call waits cuts it short, and the queue counts
//! one call (one empty or full event, one blocked-time observation, no timeout), however
//! many times the check was asked.

mod common;
use common::*;
use mpqueue::{GetError, PutError, Queue, SimpleQueue, interruptible, process};
use std::cell::Cell;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(10);
const LONG: Duration = Duration::from_secs(30);

/// A check that says stop at its `n`th call, and counts its calls.
fn stop_at(n: u32) -> (Cell<u32>, impl Fn(&Cell<u32>) -> bool) {
    (Cell::new(0), move |calls: &Cell<u32>| {
        calls.set(calls.get() + 1);
        calls.get() >= n
    })
}

#[test]
fn an_interrupted_get_is_one_call_that_found_the_queue_empty() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u8> = Queue::builder().name("int-get").create().unwrap();
    let (calls, check) = stop_at(5);
    let r = interruptible(EVERY, &|| check(&calls), || q.get());
    assert_eq!(r, Err(GetError::Interrupted));
    assert_eq!(calls.get(), 5);
    let s = snapshot("int-get");
    assert_eq!((s.empty_events, s.get_timeouts), (1, 0));
    assert_eq!(s.get_blocked.count, 1);
    // Five intervals, in one observation.
    assert!(
        s.get_blocked.sum_ns >= 5 * EVERY.as_nanos() as u64,
        "{:?}",
        s.get_blocked
    );
    // The queue is as it was: the next get takes the next item.
    q.put(3).unwrap();
    assert_eq!(q.get_timeout(LONG), Ok(3));
}

#[test]
fn a_get_whose_check_never_stops_it_times_out_once() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u8> = Queue::builder().name("int-timeout").create().unwrap();
    let (calls, check) = stop_at(u32::MAX);
    let r = interruptible(EVERY, &|| check(&calls), || {
        q.get_timeout(Duration::from_millis(100))
    });
    assert_eq!(r, Err(GetError::Empty));
    assert!(calls.get() >= 2, "asked {} times", calls.get());
    let s = snapshot("int-timeout");
    assert_eq!(
        (s.empty_events, s.get_timeouts, s.get_blocked.count),
        (1, 1, 1)
    );
}

#[test]
fn an_interrupted_put_gives_the_item_back_uncounted() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("int-put")
        .maxsize(1)
        .create()
        .unwrap();
    q.put(vec![1]).unwrap();
    let (calls, check) = stop_at(3);
    let r = interruptible(EVERY, &|| check(&calls), || q.put(vec![2]));
    assert_eq!(r, Err(PutError::Interrupted(vec![2])));
    let (calls, check) = stop_at(3);
    let batch = interruptible(EVERY, &|| check(&calls), || q.put_many(vec![vec![3]]));
    assert_eq!(batch, Err(PutError::Interrupted(vec![vec![3]])));
    let s = snapshot("int-put");
    assert_eq!((s.puts, s.full_events, s.put_timeouts), (1, 2, 0));
    assert_eq!(s.put_blocked.count, 2);
    assert_eq!(q.get_timeout(LONG), Ok(vec![1]));
    assert!(q.get_nowait().is_err());
}

#[test]
fn an_interrupted_simple_put_on_a_full_ring_gives_the_item_back_uncounted() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: SimpleQueue<Vec<u8>> =
        SimpleQueue::from_builder(Queue::builder().name("int-simple").capacity_bytes(4096))
            .unwrap();
    q.put(vec![1; 3000]).unwrap();
    let (calls, check) = stop_at(3);
    let r = interruptible(EVERY, &|| check(&calls), || q.put(vec![2; 3000]));
    assert_eq!(r.unwrap_err().into_inner(), vec![2; 3000]);
    assert_eq!(calls.get(), 3);
    let (calls, check) = stop_at(3);
    let r = interruptible(EVERY, &|| check(&calls), || q.get().and_then(|_| q.get()));
    assert_eq!(r, Err(GetError::Interrupted));
    assert_eq!(snapshot("int-simple").puts, 1);
}

#[test]
fn a_call_that_need_not_wait_never_asks() {
    setup();
    let q: Queue<u8> = Queue::builder().name("int-quick").create().unwrap();
    let (calls, check) = stop_at(1);
    interruptible(EVERY, &|| check(&calls), || {
        q.put(1).unwrap();
        assert_eq!(q.get_timeout(LONG), Ok(1));
        assert_eq!(q.get_nowait(), Err(GetError::Empty));
    });
    assert_eq!(calls.get(), 0);
    // Outside, nothing is asked: the check is gone.
    assert_eq!(q.get_timeout(EVERY * 3), Err(GetError::Empty));
    assert_eq!(calls.get(), 0);
}

#[test]
fn a_put_waiting_in_short_intervals_still_gets_the_units_of_a_killed_producer() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("int-reap")
        .maxsize(2)
        .capacity_bytes(4096)
        .create()
        .unwrap();
    q.put(vec![1; 3000]).unwrap(); // the ring is full
    let mut child = process::fork({
        let q = q.clone();
        move || {
            q.put(vec![2; 3000]).unwrap(); // waits in the feeder: the queue is full
            std::thread::sleep(LONG);
            0
        }
    })
    .unwrap();
    assert!(eventually(LONG, || snapshot("int-reap").buffered_items == 1));
    child.kill(libc::SIGKILL).unwrap();
    assert!(matches!(
        child.join_timeout(LONG),
        Err(mpqueue::ChildError::Signaled {
            signal: libc::SIGKILL,
            ..
        })
    ));
    // The dead producer's unit comes back when it is reaped, checks or not.
    let (calls, check) = stop_at(u32::MAX);
    let r = interruptible(EVERY, &|| check(&calls), || {
        q.put_timeout(vec![3; 3000], Duration::from_secs(5))
    });
    assert_eq!(r, Ok(()));
    assert_eq!(snapshot("int-reap").lost, 1);
    assert_eq!(q.get_timeout(LONG), Ok(vec![1; 3000]));
    assert_eq!(q.get_timeout(LONG), Ok(vec![3; 3000]));
}

#[test]
fn a_get_inside_a_stopped_writers_item_is_interrupted_and_keeps_what_it_read() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("int-stopped-writer")
        .capacity_bytes(1 << 20)
        .create()
        .unwrap();
    let item: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut child = process::fork({
        let (item, q) = (item.clone(), q.clone());
        move || {
            q.put(item).unwrap();
            0
        }
    })
    .unwrap();
    // The ring is full and the child waits for room inside the item: stop it there.
    assert!(eventually(LONG, || write_pos("int-stopped-writer") >= 1 << 20));
    child.kill(libc::SIGSTOP).unwrap();
    assert!(eventually(LONG, || all_threads_stopped(child.pid())));
    let (calls, check) = stop_at(3);
    let r = interruptible(EVERY, &|| check(&calls), || q.get());
    assert_eq!(r, Err(GetError::Interrupted));
    child.kill(libc::SIGCONT).unwrap();
    let got = q.get_timeout(LONG).expect("the whole item");
    assert!(
        got == item,
        "the item came back changed ({} bytes)",
        got.len()
    );
    assert_eq!(child.join_timeout(LONG).unwrap(), Some(0));
}
