//! `JoinableQueue` across real processes: `join` returns once the last `task_done` has
//! landed (never before), `task_done` too often is an error, `join_timeout` times out, and
//! a consumer killed between `get` and `task_done` does not make `join` hang (issue 14).

mod common;
use common::*;
use mpqueue::observe;
use mpqueue::{JoinableQueue, TaskDoneError, process};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn snapshot() -> observe::Snapshot {
    observe::list()
        .unwrap()
        .iter()
        .filter_map(|r| r.snapshot().ok())
        .find(|s| s.unfinished.is_some())
        .expect("a joinable queue")
}

#[test]
fn join_returns_once_every_item_of_four_producers_is_done_by_four_consumers() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: JoinableQueue<Option<u32>> = JoinableQueue::new(100).unwrap();
    // Word 0: task_done calls about to be made (counted before each call).
    let tally = SharedBytes::new(8);
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            process::fork(|| {
                while let Ok(Some(_)) = q.get() {
                    tally.word(0).fetch_add(1, SeqCst);
                    q.task_done().unwrap();
                }
                q.task_done().unwrap(); // the None
                0
            })
            .unwrap()
        })
        .collect();
    let producers: Vec<_> = (0..4)
        .map(|_| {
            process::fork(|| {
                for i in 0..2500 {
                    q.put(Some(i)).unwrap();
                }
                0
            })
            .unwrap()
        })
        .collect();
    for p in producers {
        assert_eq!(p.join().unwrap(), 0);
    }
    q.join();
    // Every task_done was under way before join returned.
    assert_eq!(tally.word(0).load(SeqCst), 10_000);
    assert_eq!(q.unfinished(), 0);
    assert_eq!(snapshot().unfinished, Some(0));
    for _ in 0..4 {
        q.put(None).unwrap();
    }
    for c in consumers {
        assert_eq!(c.join().unwrap(), 0);
    }
    q.join();
}

#[test]
fn task_done_more_often_than_items_got_is_an_error() {
    setup();
    let q: JoinableQueue<u8> = JoinableQueue::new(0).unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneError::TooMany));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(snapshot().unfinished, Some(2));
    q.get().unwrap();
    q.task_done().unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneError::TooMany));
    assert_eq!(q.unfinished(), 1);
}

#[test]
fn join_timeout_times_out_while_an_item_is_not_done() {
    setup();
    let q: JoinableQueue<u8> = JoinableQueue::new(0).unwrap();
    q.put(1).unwrap();
    let t = Instant::now();
    assert!(!q.join_timeout(Duration::from_millis(200)));
    assert!(t.elapsed() >= Duration::from_millis(200));
    q.get().unwrap();
    assert!(!q.join_timeout(Duration::ZERO));
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO));
}

/// A consumer killed after `get` and before `task_done`: its item counts as abandoned when
/// its slot is retired (join reaps it), and `join` returns.
#[test]
fn a_consumer_killed_between_get_and_task_done_does_not_make_join_hang() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: JoinableQueue<u32> = JoinableQueue::new(0).unwrap();
    let got = SharedBytes::new(8);
    q.put(7).unwrap();
    q.put(8).unwrap();
    let mut victim = process::fork(|| {
        assert_eq!(q.get().unwrap(), 7);
        q.task_done().unwrap();
        assert_eq!(q.get().unwrap(), 8);
        got.word(0).store(1, SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    assert!(eventually(LONG, || got.word(0).load(SeqCst) == 1));
    assert_eq!(q.unfinished(), 1);
    victim.kill(libc::SIGKILL).unwrap();
    let _ = victim.join_timeout(LONG);
    assert!(
        q.join_timeout(LONG),
        "join waited for a dead consumer's item"
    );
    let s = snapshot();
    assert_eq!((s.unfinished, s.tasks_abandoned), (Some(0), 1), "{s:?}");
}

/// CPython's `_TestJoinableQueue.test_task_done`: four workers take items until `None`,
/// marking each done; the parent puts 0..9, `join` returns, then `None` ×4 stops them (the
/// stop markers need no `task_done`).
#[test]
fn cpython_test_task_done() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: JoinableQueue<Option<u32>> = JoinableQueue::new(0).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            process::fork(|| {
                while let Ok(Some(_)) = q.get() {
                    std::thread::sleep(Duration::from_millis(10));
                    q.task_done().unwrap();
                }
                0
            })
            .unwrap()
        })
        .collect();
    for i in 0..10 {
        q.put(Some(i)).unwrap();
    }
    q.join();
    for _ in 0..4 {
        q.put(None).unwrap();
    }
    for w in workers {
        assert_eq!(w.join().unwrap(), 0);
    }
    q.close();
}

/// A producer killed with a capacity unit taken and its item not yet counted as put: the
/// unit comes back, and the count of unfinished tasks is not made smaller by it (before,
/// the unit was counted as a lost item and `join` returned with an item not done).
#[test]
fn a_producer_killed_while_reserving_does_not_make_join_return_early() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: JoinableQueue<u32> =
        JoinableQueue::from_builder(mpqueue::Queue::builder().name("reserving").maxsize(4))
            .unwrap();
    let up = SharedBytes::new(8);
    let mut producer = process::fork(|| {
        q.put(1).unwrap();
        up.word(0).store(1, SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    assert!(eventually(LONG, || up.word(0).load(SeqCst) == 1));
    // Its slot as if it died between taking a capacity unit and counting the item.
    let path = setup().join("q.reserving.stats");
    let bytes = std::fs::read(&path).unwrap();
    let word = |off: usize| u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap());
    let slot = (1..bytes.len() / 1024 - 1)
        .map(|i| 1024 + i * 1024)
        .find(|&base| word(base + 8) == u64::from(producer.pid()))
        .expect("the producer's slot");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&1u64.to_le_bytes(), (slot + 112) as u64)
            .unwrap(); // reserving
    }
    producer.kill(libc::SIGKILL).unwrap();
    let _ = producer.join_timeout(LONG);
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    q.put(7).unwrap(); // not done
    assert!(
        !q.join_timeout(Duration::from_millis(300)),
        "join returned with 7 not done"
    );
    assert_eq!(q.unfinished(), 1);
    assert_eq!(q.get().unwrap(), 7);
    q.task_done().unwrap();
    assert!(q.join_timeout(LONG));
}
