//! Time in queue, the oldest item's age, the last get, and the health verdicts, each from a
//! real workload of forked processes (issue 13).

mod common;
use common::*;
use mpqueue::{Queue, process};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn secs(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64())
}

/// A producer process that keeps about `depth` items queued, putting one whenever the
/// queue holds fewer, until killed.
fn topping_up(q: &Queue<u64>, depth: u64) -> process::Child {
    process::fork(|| {
        die_with_parent();
        for i in 0.. {
            if q.qsize() < depth as usize {
                q.put(i).unwrap();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        0
    })
    .unwrap()
}

/// About 20 items queued and one taken every 25 ms: each waits about 500 ms, and the
/// median of the time-in-queue histogram is in 500 ms's bucket or a neighbour.
#[test]
fn items_waiting_half_a_second_show_a_half_second_median() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<u64> = Queue::builder().name("sojourn").create().unwrap();
    let producer = topping_up(&q, 20);
    assert!(eventually(LONG, || q.qsize() >= 20));
    let consumer = consuming(&q, Duration::from_millis(25));
    // The first 20 items waited less (the queue filled at once); wait for 20 stamped
    // items after them (every 16th item is stamped).
    let start = snapshot("sojourn").wait.count;
    assert!(eventually(Duration::from_secs(60), || {
        snapshot("sojourn").wait.count >= start + 22
    }));
    let s = snapshot("sojourn");
    stop(vec![producer, consumer]);
    let p50 = s.wait.quantile(0.5).unwrap();
    // 500 ms is in the bucket (268 ms, 537 ms]: one bucket either side is 134 ms–1.07 s.
    assert!(
        p50 >= Duration::from_nanos(1 << 28) && p50 <= Duration::from_nanos(1 << 30),
        "p50 {p50:?}, histogram {:?}",
        s.wait
    );
    let mean = s.wait.sum_ns as f64 / s.wait.count as f64 / 1e9;
    assert!((0.2..1.2).contains(&mean), "mean {mean} s");
}

/// One item, never read: three seconds later it is about three seconds old, and the
/// last put is as old; nothing was ever got.
#[test]
fn an_unread_item_ages_with_the_clock() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u64> = Queue::builder().name("aging").create().unwrap();
    assert_eq!(snapshot("aging").oldest_age, None);
    q.put(1).unwrap();
    let put_at = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let s = snapshot("aging");
    let waited = put_at.elapsed().as_secs_f64();
    assert!(
        (2.5..=waited + 0.5).contains(&secs(s.oldest_age)) && waited < 4.0,
        "oldest {:?} after {waited} s",
        s.oldest_age
    );
    assert!((2.5..=waited + 0.5).contains(&secs(s.last_put_age)));
    assert_eq!(s.last_get_age, None);
    assert_eq!(s.processes[0].last_put_age, s.last_put_age);
}

/// An item stuck in a stopped process's feeder buffer, behind newer items this process
/// wrote and got: it is the oldest, and its age is its own.
#[test]
fn an_item_stuck_in_a_feeder_buffer_is_the_oldest() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let name = "buffered-age";
    let q: Queue<Vec<u8>> = Queue::builder()
        .name(name)
        .capacity_bytes(64 << 10)
        .create()
        .unwrap();
    let ready: Queue<u8> = Queue::new(0).unwrap();
    for _ in 0..40 {
        q.put(vec![0; 1000]).unwrap(); // 40 KiB of the ring's 64
    }
    // P's item does not fit: it waits in P's feeder buffer; then P stops.
    let p = process::fork(|| {
        die_with_parent();
        q.put(vec![1; 30_000]).unwrap();
        ready.put(1).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    ready.get_timeout(LONG).unwrap();
    let put_at = Instant::now();
    p.kill(libc::SIGSTOP).unwrap();
    // Stopped for sure (its feeder thread included) before any room is made.
    assert!(eventually(LONG, || all_threads_stopped(p.pid())));
    for _ in 0..40 {
        assert_eq!(q.get_timeout(LONG).unwrap().len(), 1000);
    }
    // Three seconds on, newer items go through: the put timeline alone would date the
    // head by them.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(put_at.elapsed()));
    for i in 0..5u8 {
        q.put(vec![i]).unwrap();
    }
    for _ in 0..5 {
        assert_eq!(q.get_timeout(LONG).unwrap().len(), 1);
    }
    let s = snapshot(name);
    let waited = put_at.elapsed().as_secs_f64();
    stop(vec![p]);
    assert_eq!((s.size, s.buffered_items, s.lost), (1, 1, 0), "{s:?}");
    assert!(
        (2.5..=waited + 0.5).contains(&secs(s.oldest_age)),
        "oldest {:?} after {waited} s",
        s.oldest_age
    );
}
