//! Crash safety: producers and consumers killed with SIGKILL at random moments (holding the
//! write or read lock, in the middle of a streamed item, blocked on a full or empty queue),
//! hundreds of times, while survivors on both sides keep going.
//!
//! What must hold: survivors never hang; every item received is intact; every item of the
//! surviving producer is received exactly once, except at most one per killed consumer
//! (the item it had taken out); and the counters account for everything:
//! `puts == received + lost + taken by killed consumers`.
//!
//! `MPQUEUE_SOAK_SECS` sets how long the kill loop runs (default 4 s; the opt-in soak is
//! `MPQUEUE_SOAK_SECS=600 cargo nextest run -p mpqueue --test crash --profile soak`).

mod common;
use common::*;
use mpqueue::{Queue, observe, process};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SURVIVOR: u32 = 0;
const MAX_SEQ: usize = 50_000_000;
const PRODUCERS: usize = 65_536;

#[derive(Serialize, Deserialize)]
struct Item {
    producer: u32,
    seq: u32,
    body: Vec<u8>,
}

fn body(producer: u32, seq: u32) -> Vec<u8> {
    // Every 13th item is larger than the 8 KiB ring, so it streams and kills can land in
    // the middle of it; the rest vary from 0 to ~300 bytes.
    let len = if seq % 13 == 5 {
        20_000 + (seq % 7) as usize * 1000
    } else {
        (seq as usize * 37 + producer as usize) % 300
    };
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq ^ producer) as u8)
        .collect()
}

/// Shared memory for the whole run: tallies, and a receive count per (producer, seq).
struct Tally(SharedBytes);

impl Tally {
    fn new() -> Self {
        // 512 bytes of tallies, then a count byte per survivor item and per victim item.
        Tally(SharedBytes::new(512 + MAX_SEQ + PRODUCERS * 512))
    }

    /// Tally word `i`: 0 received, 1 survivor's last seq + 1, 2 stop.
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < 64);
        self.0.word(i)
    }

    /// Receive count of (producer, seq).
    fn seen(&self, producer: u32, seq: u32) -> &AtomicU8 {
        assert!(producer == SURVIVOR || seq < 512);
        let idx = if producer == SURVIVOR {
            seq as usize
        } else {
            MAX_SEQ + (producer as usize) * 512 + seq as usize
        };
        self.0.byte(512 + idx)
    }
}

/// A simple xorshift, seeded per run, for kill delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Takes items (`batch` at a time with `get_many` when over 1) and tallies each.
fn consume(q: &Queue<Item>, t: &Tally, stop_when_drained: bool, batch: usize) {
    let wait = Duration::from_millis(200);
    loop {
        let got = if batch > 1 {
            q.get_many_timeout(batch, wait)
        } else {
            q.get_timeout(wait).map(|item| vec![item])
        };
        match got {
            Ok(items) => {
                for item in items {
                    assert_eq!(
                        item.body,
                        body(item.producer, item.seq),
                        "corrupt item {}:{}",
                        item.producer,
                        item.seq
                    );
                    t.seen(item.producer, item.seq)
                        .fetch_add(1, Ordering::SeqCst);
                    t.word(0).fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(mpqueue::GetError::Empty) => {
                if stop_when_drained && t.word(2).load(Ordering::SeqCst) == 1 {
                    return;
                }
            }
            Err(e) => panic!("get failed: {e}"),
        }
    }
}

/// The harness; with `batch` over 1 every process puts and gets in batches (`put_many`
/// of up to `batch` items, at most 4 for the survivor; `get_many(batch)`), and a killed
/// consumer may take up to `batch` items with it.
fn run(maxsize: usize, label: &str, batch: usize) {
    setup();
    let secs: u64 = std::env::var("MPQUEUE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let _w = watchdog(Duration::from_secs(secs + 240));
    let q: Queue<Item> = Queue::builder()
        .label(label)
        .maxsize(maxsize)
        .capacity_bytes(8192)
        .max_processes(256)
        .flush_timeout(Some(Duration::from_secs(30)))
        .create()
        .unwrap();
    let t = Tally::new();
    // The surviving producer puts until told to stop; the surviving consumer drains.
    let survivor_p = process::fork(|| {
        let mut seq = 0u32;
        let chunk = batch.clamp(1, 4) as u32;
        while t.word(2).load(Ordering::SeqCst) == 0 && (seq as usize) < MAX_SEQ {
            let n = chunk.min(MAX_SEQ as u32 - seq);
            let mut items: Vec<Item> = (seq..seq + n)
                .map(|seq| Item {
                    producer: SURVIVOR,
                    seq,
                    body: body(SURVIVOR, seq),
                })
                .collect();
            loop {
                let wait = Duration::from_millis(500);
                let r = match items.len() {
                    1 => q
                        .put_timeout(items.remove(0), wait)
                        .map_err(|e| e.map(|i| vec![i])),
                    _ => q.put_many_timeout(items, wait),
                };
                match r {
                    Ok(()) => break,
                    Err(e) if e.is_full() => items = e.into_inner(), // keep trying; never hang
                    Err(e) => panic!("put failed: {e}"),
                }
            }
            seq += n;
            t.word(1).store(u64::from(seq), Ordering::SeqCst);
            if seq % 64 < n {
                std::thread::sleep(Duration::from_micros(500));
            }
            // An unbounded queue has no backpressure: keep the backlog (and this process's
            // feeder buffer) bounded, as a real producer would, so a long soak does not
            // exhaust memory.
            while q.qsize() > 20_000 && t.word(2).load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        0
    })
    .unwrap();
    let survivor_c = process::fork(|| {
        consume(&q, &t, true, batch);
        0
    })
    .unwrap();

    let mut rng = Rng(std::process::id() as u64 * 0x9E37_79B9 + 1);
    let (mut producer_kills, mut consumer_kills) = (0u64, 0u64);
    let start = Instant::now();
    let mut next_id = 1u32;
    // Six victims alive at any time (with the two survivors: eight processes); each tick
    // one of them, chosen at random, is killed and replaced.
    let spawn = |rng: &mut Rng, next_id: &mut u32| -> (mpqueue::Child, bool) {
        if rng.next().is_multiple_of(2) && (*next_id as usize) < PRODUCERS - 1 {
            let id = *next_id;
            *next_id += 1;
            let c = process::fork(|| {
                let chunk = batch.max(1) as u32;
                for first in (0..512u32).step_by(chunk as usize) {
                    let mut items: Vec<Item> = (first..(first + chunk).min(512))
                        .map(|seq| Item {
                            producer: id,
                            seq,
                            body: body(id, seq),
                        })
                        .collect();
                    let wait = Duration::from_millis(50);
                    let _ = match items.len() {
                        1 => q.put_timeout(items.remove(0), wait).map_err(drop),
                        _ => q.put_many_timeout(items, wait).map_err(drop),
                    };
                }
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .unwrap();
            (c, false)
        } else {
            let c = process::fork(|| {
                consume(&q, &t, false, batch);
                0
            })
            .unwrap();
            (c, true)
        }
    };
    let mut victims: Vec<(mpqueue::Child, bool)> =
        (0..6).map(|_| spawn(&mut rng, &mut next_id)).collect();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_micros(rng.next() % 15_000));
        let i = (rng.next() % victims.len() as u64) as usize;
        let (victim, is_consumer) = victims.swap_remove(i);
        victim.kill(libc::SIGKILL).unwrap();
        assert!(victim.join().is_err(), "the victim should die by SIGKILL");
        if is_consumer {
            consumer_kills += 1;
        } else {
            producer_kills += 1;
        }
        victims.push(spawn(&mut rng, &mut next_id));
    }
    for (victim, is_consumer) in victims {
        victim.kill(libc::SIGKILL).unwrap();
        assert!(victim.join().is_err());
        if is_consumer {
            consumer_kills += 1;
        } else {
            producer_kills += 1;
        }
    }
    // Stop: the survivor producer finishes its current put and exits (flushing); then the
    // survivor consumer drains everything left.
    t.word(2).store(1, Ordering::SeqCst);
    assert_eq!(survivor_p.join().unwrap(), 0);
    assert_eq!(survivor_c.join().unwrap(), 0);
    // Anything still in the ring now (none expected) is drained here, so nothing is missed.
    while let Ok(item) = q.get_timeout(Duration::from_millis(200)) {
        assert_eq!(item.body, body(item.producer, item.seq));
        t.seen(item.producer, item.seq)
            .fetch_add(1, Ordering::SeqCst);
        t.word(0).fetch_add(1, Ordering::SeqCst);
    }

    let survivor_puts = t.word(1).load(Ordering::SeqCst) as u32;
    let mut missing = 0u64;
    for seq in 0..survivor_puts {
        match t.seen(SURVIVOR, seq).load(Ordering::SeqCst) {
            1 => {}
            0 => missing += 1,
            n => panic!("survivor item {seq} received {n} times"),
        }
    }
    for id in 1..next_id {
        for seq in 0..512 {
            assert!(
                t.seen(id, seq).load(Ordering::SeqCst) <= 1,
                "victim item {id}:{seq} duplicated"
            );
        }
    }
    let s = observe::list()
        .unwrap()
        .iter()
        .filter_map(|r| r.snapshot().ok())
        .find(|s| s.name == label)
        .unwrap();
    let received = t.word(0).load(Ordering::SeqCst);
    eprintln!(
        "{label}: {secs}s, {producer_kills} producers and {consumer_kills} consumers killed; survivor put {survivor_puts}, \
         missing {missing}; puts {} received {received} lost {} discarded {} lock recoveries {}",
        s.puts, s.lost, s.frames_discarded, s.lock_recoveries
    );
    assert!(
        producer_kills + consumer_kills >= 50,
        "too few kills to mean anything"
    );
    let may_take = consumer_kills * batch.max(1) as u64;
    assert!(
        missing <= may_take,
        "{missing} survivor items lost, only {consumer_kills} consumers were killed"
    );
    // Every accepted item is received, counted as lost, or was taken by a killed consumer.
    let taken_by_killed = s
        .puts
        .checked_sub(received + s.lost)
        .expect("more received + lost than put");
    assert!(
        taken_by_killed <= may_take,
        "{taken_by_killed} items unaccounted for"
    );
    assert!(missing <= taken_by_killed);
    assert_eq!(q.qsize(), 0);
    assert_eq!(s.size, 0);
}

#[test]
fn kill_minus_nine_anywhere_unbounded() {
    run(0, "crash-unbounded", 1);
}

#[test]
fn kill_minus_nine_anywhere_bounded() {
    run(16, "crash-bounded", 1);
}

#[test]
fn kill_minus_nine_anywhere_with_batches_unbounded() {
    run(0, "crash-batches-unbounded", 16);
}

#[test]
fn kill_minus_nine_anywhere_with_batches_bounded() {
    run(16, "crash-batches-bounded", 8);
}
