//! Ports of CPython's `_TestQueue` and the other queue cases of `_test_multiprocessing.py`
//! (see `tests/CONFORMANCE.md` for the mapping), with real forked processes.

mod common;
use common::*;
use mpqueue::{GetError, JoinError, PutError, Queue, process};
use serde::{Deserialize, Serialize, Serializer};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);
const TIMEOUT1: Duration = Duration::from_millis(100);

/// A one-shot cross-process event (Python's `Event` in these tests).
struct Event(Queue<u8>);

impl Event {
    fn new() -> Self {
        Event(Queue::new(0).unwrap())
    }
    fn set(&self) {
        self.0.put(1).unwrap();
    }
    fn wait(&self) {
        self.0.get_timeout(LONG).expect("event was never set");
    }
}

fn at_least(start: Instant, d: Duration) {
    assert!(
        start.elapsed() >= d,
        "returned after {:?}, expected >= {d:?}",
        start.elapsed()
    );
}

/// 2.1.1 test_put
#[test]
fn put_forms_full_and_empty() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<i32> = Queue::new(6).unwrap();
    let (can_start, can_continue) = (Event::new(), Event::new());
    let child = process::fork(|| {
        can_start.wait();
        for _ in 0..6 {
            q.get_timeout(LONG).unwrap();
        }
        can_continue.set();
        0
    })
    .unwrap();
    assert!(q.empty());
    assert!(!q.full());
    q.put(1).unwrap();
    q.put_timeout(2, LONG).unwrap();
    q.put(3).unwrap();
    q.put_nowait(4).unwrap();
    q.put_nowait(5).unwrap();
    q.put_nowait(6).unwrap();
    assert!(!q.empty());
    assert!(q.full());
    assert!(matches!(q.put_nowait(7), Err(PutError::Full(7))));
    assert!(matches!(q.try_put(7), Err(PutError::Full(7))));
    let t = Instant::now();
    assert!(matches!(q.put_timeout(7, TIMEOUT1), Err(PutError::Full(7))));
    at_least(t, TIMEOUT1);
    assert!(matches!(
        q.put_timeout(7, Duration::ZERO),
        Err(PutError::Full(7))
    ));
    can_start.set();
    can_continue.wait();
    assert!(q.empty());
    assert!(!q.full());
    assert_eq!(child.join().unwrap(), 0);
}

/// 2.1.2 test_get
#[test]
fn get_forms_and_empty() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<i32> = Queue::new(0).unwrap();
    let (can_start, can_continue) = (Event::new(), Event::new());
    let child = process::fork(|| {
        can_start.wait();
        for i in 1..=5 {
            q.put(i).unwrap();
        }
        q.close();
        q.join_thread().unwrap();
        can_continue.set();
        0
    })
    .unwrap();
    assert!(q.empty());
    can_start.set();
    can_continue.wait();
    assert!(eventually(LONG, || !q.empty()));
    assert_eq!(q.get_nowait().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get_timeout(LONG).unwrap(), 3);
    assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), 4);
    assert_eq!(q.try_get().unwrap(), 5);
    assert!(q.empty());
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    let t = Instant::now();
    assert_eq!(q.get_timeout(TIMEOUT1), Err(GetError::Empty));
    at_least(t, TIMEOUT1);
    assert_eq!(q.get_timeout(Duration::ZERO), Err(GetError::Empty));
    assert_eq!(child.join().unwrap(), 0);
}

/// 2.1.3 test_fork
#[test]
fn parent_items_before_child_items() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<i32> = Queue::new(0).unwrap();
    for i in 0..10 {
        q.put(i).unwrap();
    }
    let child = process::fork(|| {
        for i in 10..20 {
            q.put(i).unwrap();
        }
        0
    })
    .unwrap();
    for i in 0..20 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
}

/// 2.1.4 test_qsize
#[test]
fn qsize_len_is_empty() {
    setup();
    let q: Queue<i32> = Queue::new(0).unwrap();
    assert_eq!(q.qsize(), 0);
    q.put(1).unwrap();
    assert_eq!(q.qsize(), 1);
    q.put(5).unwrap();
    assert_eq!(q.qsize(), 2);
    q.get().unwrap();
    assert_eq!(q.qsize(), 1);
    q.get().unwrap();
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.len(), 0);
    assert!(q.is_empty());
}

/// 2.1.4 in a bounded queue, and counting items still in another process's feeder buffer.
#[test]
fn qsize_counts_buffered_items_of_other_processes() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(4096).create().unwrap();
    let child = process::fork(|| {
        // 10 items of 3 KiB: at most one fits the 4 KiB ring, the rest wait in the buffer.
        for _ in 0..10 {
            q.put(vec![0; 3000]).unwrap();
        }
        assert!(q.buffered() >= 8);
        0
    })
    .unwrap();
    assert!(eventually(LONG, || q.qsize() == 10));
    for _ in 0..10 {
        q.get_timeout(LONG).unwrap();
    }
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(q.qsize(), 0);
}

/// 2.1.6 test_no_import_lock_contention: put then get(timeout) while holding a lock and
/// inside a one-time initialiser, in the same thread.
#[test]
fn no_lock_contention_in_initialiser() {
    setup();
    static INIT: OnceLock<String> = OnceLock::new();
    static GLOBAL: Mutex<()> = Mutex::new(());
    let _held = GLOBAL.lock().unwrap();
    let got = INIT.get_or_init(|| {
        let q: Queue<String> = Queue::new(0).unwrap();
        q.put("knock knock".into()).unwrap();
        let v = q.get_timeout(Duration::from_secs(3)).unwrap();
        q.close();
        v
    });
    assert_eq!(got, "knock knock");
}

/// 2.1.7 test_timeout
#[test]
fn get_timeout_waits_out_its_timeout() {
    setup();
    let q: Queue<i32> = Queue::new(0).unwrap();
    let t = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(200)),
        Err(GetError::Empty)
    );
    at_least(t, Duration::from_millis(100));
}

/// Serialises only when `ok`: stands in for Python's unpicklable object.
#[derive(Debug, Deserialize, PartialEq)]
struct Fragile {
    ok: bool,
}

impl Serialize for Fragile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.ok {
            s.serialize_bool(true)
        } else {
            Err(serde::ser::Error::custom("refusing to serialise"))
        }
    }
}

/// 2.1.8 test_queue_feeder_donot_stop_onexc (deliberate difference: the error comes back
/// from `put` with the item; the queue goes on and no capacity is taken).
#[test]
fn encode_error_returns_item_and_queue_goes_on() {
    setup();
    for maxsize in [0, 1] {
        let q: Queue<Fragile> = Queue::new(maxsize).unwrap();
        match q.put(Fragile { ok: false }) {
            Err(PutError::Encode { item, reason }) => {
                assert_eq!(item, Fragile { ok: false });
                assert!(reason.contains("refusing"), "{reason}");
            }
            other => panic!("expected an encode error, got {other:?}"),
        }
        // No capacity was taken: with `maxsize` 1 there is room for this one at once.
        q.put_nowait(Fragile { ok: true }).unwrap();
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.get_timeout(LONG).unwrap(), Fragile { ok: true });
        assert!(q.empty());
    }
}

/// 2.1.9 test_queue_feeder_on_queue_feeder_error: the "callback" is the error value itself,
/// which carries the original item.
#[test]
fn encode_error_hands_back_the_original_item() {
    setup();
    let q: Queue<Fragile> = Queue::new(0).unwrap();
    let err = q.put_nowait(Fragile { ok: false }).unwrap_err();
    assert!(err.to_string().contains("cannot encode item"));
    assert_eq!(err.into_inner(), Fragile { ok: false });
    q.put(Fragile { ok: true }).unwrap();
    assert_eq!(q.get().unwrap(), Fragile { ok: true });
}

/// 2.1.10 test_closed_queue_put_get_exceptions
#[test]
fn closed_queue_put_get() {
    setup();
    let q: Queue<String> = Queue::new(0).unwrap();
    q.close();
    assert!(matches!(q.put("foo".into()), Err(PutError::Closed(s)) if s == "foo"));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.get_nowait().unwrap_err().to_string(), "queue is closed");
}

/// 2.1.11 test_closed_queue_empty_exceptions (deliberate difference: `empty()` keeps
/// answering after close).
#[test]
fn closed_queue_empty() {
    setup();
    let q: Queue<String> = Queue::new(0).unwrap();
    q.close();
    q.join_thread().unwrap();
    assert!(q.empty());
    let q: Queue<String> = Queue::new(0).unwrap();
    q.put("foo".into()).unwrap();
    q.close();
    q.join_thread().unwrap();
    assert!(!q.empty());
    assert_eq!(q.qsize(), 1);
}

/// `join_thread` before `close` is an error, as Python asserts.
#[test]
fn join_thread_requires_close() {
    setup();
    let q: Queue<u8> = Queue::new(0).unwrap();
    q.put(1).unwrap();
    assert_eq!(q.join_thread(), Err(JoinError::NotClosed));
    q.close();
    assert_eq!(q.join_thread(), Ok(()));
}

/// 2.2 test_process: a capacity-1 queue passes a sequence from child to parent.
#[test]
fn maxsize_one_child_to_parent() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<String> = Queue::new(1).unwrap();
    let child = process::fork(|| {
        for s in ["args", "kwargs", "name", "authkey", "pid"] {
            q.put(s.into()).unwrap();
        }
        0
    })
    .unwrap();
    for s in ["args", "kwargs", "name", "authkey", "pid"] {
        assert_eq!(q.get_timeout(LONG).unwrap(), s);
    }
    assert_eq!(child.join().unwrap(), 0);
}

/// 2.2 test_close (_TestProcess): a consumer blocked in `get` in another process wakes when
/// the item arrives.
#[test]
fn blocked_getter_wakes_up() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Option<u8>> = Queue::new(0).unwrap();
    let started = Event::new();
    let child = process::fork(|| {
        started.set();
        match q.get() {
            Ok(None) => 0,
            _ => 1,
        }
    })
    .unwrap();
    started.wait();
    // Put only once the child's get is asleep (in the kernel, on the queue's futex).
    assert!(eventually(LONG, || asleep(child.pid())));
    q.put(None).unwrap();
    assert_eq!(child.join().unwrap(), 0);
}

/// 2.2 test_lose_target_ref: the parent joins the child first, then gets (flush at exit).
#[test]
fn child_flushes_before_exit() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<i32> = Queue::new(0).unwrap();
    let child = process::fork(|| {
        q.put(5).unwrap();
        0
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(q.get_timeout(LONG).unwrap(), 5);
}

/// 2.2 test_wait_return / many producers: several children put, order across them free.
#[test]
fn many_producers_deliver_everything() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u32> = Queue::new(0).unwrap();
    let children: Vec<_> = (0..6)
        .map(|p| {
            process::fork(|| {
                q.put(p).unwrap();
                0
            })
            .unwrap()
        })
        .collect();
    let mut got: Vec<u32> = (0..6).map(|_| q.get_timeout(LONG).unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..6).collect::<Vec<_>>());
    for c in children {
        assert_eq!(c.join().unwrap(), 0);
    }
}

/// 2.2 TestStdinBadfiledescriptor.test_queue_in_process: non-blocking get on an empty queue
/// made in a child, from a grandchild.
#[test]
fn nowait_get_in_grandchild() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let child = process::fork(|| {
        let q: Queue<u8> = Queue::new(0).unwrap();
        let grandchild = process::fork(|| match q.get_nowait() {
            Err(GetError::Empty) => 0,
            _ => 1,
        })
        .unwrap();
        grandchild.join().unwrap()
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
}

/// 2.2 test_nested_startmethod: a child and its grandchild both put; all readable after
/// both exited.
#[test]
fn nested_children_put() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u8> = Queue::new(0).unwrap();
    let child = process::fork(|| {
        q.put(2).unwrap();
        let g = process::fork(|| {
            q.put(1).unwrap();
            0
        })
        .unwrap();
        g.join().unwrap()
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
    let mut got = vec![];
    while !q.empty() {
        got.push(q.get_timeout(LONG).unwrap());
    }
    got.sort();
    assert_eq!(got, vec![1, 2]);
}

/// 2.2 test_forked_thread_not_started: a put from another thread of the child is flushed.
#[test]
fn put_from_child_thread_is_flushed() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<String> = Queue::new(0).unwrap();
    let child = process::fork(|| {
        std::thread::scope(|s| {
            s.spawn(|| q.put("done".into()).unwrap());
        });
        0
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(q.get_nowait().unwrap(), "done");
}

/// 2.3 test_connection: a 16 MiB message round-trips, through a 64 KiB ring.
#[test]
fn sixteen_mib_item() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(64 << 10).create().unwrap();
    let child = process::fork(|| {
        let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
        q.put(big).unwrap();
        0
    })
    .unwrap();
    let v = q.get_timeout(LONG).unwrap();
    assert_eq!(v.len(), 16 << 20);
    assert!(v.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(child.join().unwrap(), 0);
}

/// 2.3 _TestPoll: zero-length items and message boundaries are kept exactly.
#[test]
fn boundaries_and_empty_items() {
    setup();
    let q: Queue<Vec<u8>> = Queue::new(0).unwrap();
    for m in [&b""[..], b"a", b"b", b"cd", b"", b""] {
        q.put(m.to_vec()).unwrap();
    }
    for m in [&b""[..], b"a", b"b", b"cd", b"", b""] {
        assert_eq!(q.get_nowait().unwrap(), m);
    }
    let units: Queue<()> = Queue::new(0).unwrap();
    units.put(()).unwrap();
    units.put(()).unwrap();
    assert_eq!(units.qsize(), 2);
    assert_eq!(units.get(), Ok(()));
    assert_eq!(units.get(), Ok(()));
    assert_eq!(units.get_nowait(), Err(GetError::Empty));
}

extern "C" fn on_signal(_: libc::c_int) {}

/// 2.3 TestIgnoreEINTR: signals arriving during a blocked get and a blocked put neither
/// break the call nor stretch its timeout.
#[test]
fn signals_do_not_break_waits() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    // SAFETY: installs a handler that does nothing, without SA_RESTART, so blocked system
    // calls see EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let pid = std::process::id();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: sends SIGUSR1 (handled by a no-op) to this process.
                unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let q: Queue<u8> = Queue::new(1).unwrap();
    let t = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(300)),
        Err(GetError::Empty)
    );
    at_least(t, Duration::from_millis(300));
    q.put(1).unwrap();
    let t = Instant::now();
    assert!(
        q.put_timeout(2, Duration::from_millis(300))
            .unwrap_err()
            .is_full()
    );
    at_least(t, Duration::from_millis(300));
    assert_eq!(q.get_nowait(), Ok(1));
    // And a blocked get still receives what a child sends later while signals fly: the
    // child puts once this process's main thread is asleep in its get.
    let child = process::fork(|| {
        while !asleep(pid) {
            std::thread::yield_now();
        }
        q.put(9).unwrap();
        0
    })
    .unwrap();
    assert_eq!(q.get_timeout(LONG), Ok(9));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pinger.join().unwrap();
    assert_eq!(child.join().unwrap(), 0);
}

/// 2.4.3: `put` on an unbounded queue never blocks on the channel being full: the feeder
/// absorbs it.
#[test]
fn unbounded_put_never_blocks_on_a_full_channel() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(4096).create().unwrap();
    for i in 0..1000u32 {
        q.put(i.to_le_bytes().repeat(64)).unwrap();
    }
    assert_eq!(q.qsize(), 1000);
    assert!(q.buffered() > 900);
    for i in 0..1000u32 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i.to_le_bytes().repeat(64));
    }
}

/// `Queue<T>` is `Clone + Send + Sync`, and clones in one process share one buffer.
#[test]
fn queue_is_clone_send_sync() {
    fn assert_traits<X: Clone + Send + Sync + 'static>() {}
    assert_traits::<Queue<String>>();
    assert_traits::<Queue<Vec<u8>>>();
    setup();
    let q: Queue<u32> = Queue::new(0).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let q = q.clone();
            s.spawn(move || {
                for i in 0..1000 {
                    q.put(t * 1000 + i).unwrap();
                }
            });
        }
    });
    let mut got: Vec<u32> = (0..4000).map(|_| q.get_timeout(LONG).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..4000).collect::<Vec<_>>());
}

/// Whether the main thread of process `pid` is asleep in the kernel (state `S`).
fn asleep(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('S'))
        })
        .unwrap_or(false)
}
