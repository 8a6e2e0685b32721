//! Many producer and consumer processes: every item received exactly once, per-producer
//! order kept, with an unbounded queue, with `maxsize` 1 and with 1 MiB items.

mod common;
use common::*;
use mpqueue::{Queue, process};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A byte per item in shared memory, so every consumer process can mark what it received.
struct Seen(SharedBytes);

impl Seen {
    fn new(len: usize) -> Self {
        Seen(SharedBytes::new(len))
    }

    fn mark(&self, i: usize) -> u8 {
        self.0.byte(i).fetch_add(1, Ordering::Relaxed)
    }

    fn get(&self, i: usize) -> u8 {
        self.0.byte(i).load(Ordering::Relaxed)
    }
}

/// Runs `producers` × `consumers` processes moving `per_producer` items each; items carry
/// (producer, sequence) and `payload` extra bytes.
fn run(producers: u32, consumers: u32, per_producer: u32, maxsize: usize, payload: usize) {
    setup();
    let _w = watchdog(Duration::from_secs(600));
    let total = (producers * per_producer) as usize;
    let q: Queue<(u32, u32, Vec<u8>)> = Queue::new(maxsize).unwrap();
    let seen = Seen::new(total);
    let cons: Vec<_> = (0..consumers)
        .map(|_| {
            process::fork(|| {
                let mut last = vec![None::<u32>; producers as usize];
                loop {
                    let (p, s, body) = q.get_timeout(Duration::from_secs(120)).unwrap();
                    if p == u32::MAX {
                        return 0;
                    }
                    // Per-producer order: what one consumer sees of a producer increases.
                    if let Some(prev) = last[p as usize] {
                        assert!(s > prev, "producer {p}: {s} after {prev}");
                    }
                    last[p as usize] = Some(s);
                    assert_eq!(body.len(), payload);
                    assert!(body.iter().all(|&b| b == (s % 251) as u8), "corrupt body");
                    assert_eq!(seen.mark((p * per_producer + s) as usize), 0, "duplicate");
                }
            })
            .unwrap()
        })
        .collect();
    let prods: Vec<_> = (0..producers)
        .map(|p| {
            process::fork(|| {
                for s in 0..per_producer {
                    q.put((p, s, vec![(s % 251) as u8; payload])).unwrap();
                }
                0
            })
            .unwrap()
        })
        .collect();
    for c in prods {
        assert_eq!(c.join().unwrap(), 0);
    }
    for _ in 0..consumers {
        q.put((u32::MAX, 0, vec![])).unwrap();
    }
    for c in cons {
        assert_eq!(c.join().unwrap(), 0);
    }
    let missing = (0..total).filter(|&i| seen.get(i) != 1).count();
    assert_eq!(missing, 0, "items not received exactly once");
    assert_eq!(q.qsize(), 0);
    // The last handle gone, the queue's shared memory is gone too.
    let name = q.name().to_string();
    drop(q);
    let left = mpqueue::observe::list().unwrap();
    assert!(
        left.iter()
            .all(|r| r.snapshot().map_or(true, |s| s.name != name)),
        "{name} left behind"
    );
}

#[test]
fn stress_4x4_one_million_items() {
    run(4, 4, 250_000, 0, 0);
}

#[test]
fn stress_4x4_maxsize_1() {
    run(4, 4, 25_000, 1, 0);
}

#[test]
fn stress_4x4_one_mib_items() {
    run(4, 4, 100, 0, 1 << 20);
}
