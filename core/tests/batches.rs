//! `put_many` and `get_many` across real processes: order per producer, at most `max` and
//! never zero items, all or nothing against `maxsize`, timeouts, a bad item in a batch, and
//! a model check mixing batches with single operations (issue 14).

mod common;
use common::*;
use mpqueue::{GetError, PutError, Queue, process};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn batches_from_four_producers_arrive_whole_and_in_order_per_producer() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<(u32, u32)> = Queue::new(1000).unwrap();
    let per = 20_000u32;
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            process::fork(|| {
                let mut i = 0;
                while i < per {
                    let n = (i % 37 + 1).min(per - i); // batches of 1 to 37
                    q.put_many((i..i + n).map(|k| (p, k)).collect()).unwrap();
                    i += n;
                }
                0
            })
            .unwrap()
        })
        .collect();
    let mut next = [0u32; 4];
    let mut got = 0;
    while got < 4 * per {
        let batch = q.get_many_timeout(64, LONG).unwrap();
        assert!(!batch.is_empty() && batch.len() <= 64, "{}", batch.len());
        for (p, k) in batch {
            assert_eq!(k, next[p as usize], "producer {p}");
            next[p as usize] += 1;
            got += 1;
        }
    }
    for p in producers {
        assert_eq!(p.join().unwrap(), 0);
    }
    let s = mpqueue::observe::list().unwrap()[0].snapshot().unwrap();
    assert_eq!(
        (s.puts, s.gets, s.size),
        (4 * per as u64, 4 * per as u64, 0)
    );
}

#[test]
fn put_many_is_all_or_nothing_on_a_bounded_queue() {
    setup();
    let q: Queue<u8> = Queue::new(10).unwrap();
    q.put_many(vec![0; 8]).unwrap();
    let e = q.put_many_nowait(vec![1, 2, 3]).unwrap_err();
    assert_eq!(e, PutError::Full(vec![1, 2, 3]));
    assert_eq!(q.qsize(), 8);
    q.put_many_nowait(vec![4, 5]).unwrap();
    assert!(q.full());
    // More than maxsize can never fit: Full at once, even blocking.
    assert!(q.get_many(10).unwrap().len() == 10);
    assert!(q.put_many(vec![9; 11]).unwrap_err().is_full());
    assert_eq!(q.qsize(), 0);
}

#[test]
fn batch_timeouts_hold() {
    setup();
    let q: Queue<u8> = Queue::new(2).unwrap();
    let t = Instant::now();
    assert_eq!(
        q.get_many_timeout(5, Duration::from_millis(100)),
        Err(GetError::Empty)
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    q.put(1).unwrap();
    let t = Instant::now();
    let e = q
        .put_many_timeout(vec![2, 3], Duration::from_millis(100))
        .unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(e.into_inner(), [2, 3]);
    assert_eq!(q.get_many_nowait(5).unwrap(), [1]);
    assert_eq!(q.get_many_nowait(5), Err(GetError::Empty));
}

#[test]
fn a_bad_item_ends_the_batch_and_its_error_comes_next() {
    setup();
    let name = "bad-in-batch";
    let strings: Queue<String> = Queue::builder().name(name).create().unwrap();
    let bytes: Queue<Vec<u8>> = Queue::open(name).unwrap();
    strings.put("a".into()).unwrap();
    bytes.put(vec![0xff, 0xff, 0xff]).unwrap(); // not a String
    strings.put("b".into()).unwrap();
    assert_eq!(strings.get_many(10).unwrap(), ["a"]);
    assert!(matches!(strings.get_many(10), Err(GetError::Decode { .. })));
    assert_eq!(strings.get_many(10).unwrap(), ["b"]);
}

/// One operation of the model check.
#[derive(Debug, Clone)]
enum Op {
    Put(u16),
    PutMany(Vec<u16>),
    Get,
    GetMany(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u16>().prop_map(Op::Put),
        prop::collection::vec(any::<u16>(), 0..12).prop_map(Op::PutMany),
        Just(Op::Get),
        (0usize..12).prop_map(Op::GetMany),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn batches_and_single_operations_agree_with_a_model_queue(
        ops in prop::collection::vec(op(), 1..60),
        maxsize in 0usize..16,
    ) {
        setup();
        let q: Queue<u16> = Queue::new(maxsize).unwrap();
        let mut model: VecDeque<u16> = VecDeque::new();
        let room = |m: &VecDeque<u16>, n: usize| maxsize == 0 || m.len() + n <= maxsize;
        for op in ops {
            match op {
                Op::Put(v) => {
                    let r = q.put_nowait(v);
                    prop_assert_eq!(r.is_ok(), room(&model, 1));
                    if r.is_ok() { model.push_back(v); }
                }
                Op::PutMany(vs) => {
                    let fits = room(&model, vs.len());
                    let r = q.put_many_nowait(vs.clone());
                    prop_assert_eq!(r.is_ok(), fits);
                    if fits { model.extend(vs); } else { prop_assert_eq!(r.unwrap_err().into_inner(), vs); }
                }
                Op::Get => match model.pop_front() {
                    Some(v) => prop_assert_eq!(q.get_timeout(LONG), Ok(v)),
                    None => prop_assert_eq!(q.get_nowait(), Err(GetError::Empty)),
                },
                Op::GetMany(max) => {
                    let want: Vec<u16> = model.drain(..max.max(1).min(model.len())).collect();
                    if want.is_empty() {
                        prop_assert_eq!(q.get_many_nowait(max), Err(GetError::Empty));
                    } else {
                        // Everything was written straight into the ring: all of it is there.
                        prop_assert_eq!(q.get_many_timeout(max, LONG), Ok(want));
                    }
                }
            }
            prop_assert_eq!(q.qsize(), model.len());
        }
    }
}

/// A batch never starts a streamed item: with a writer stopped in the middle of an item
/// larger than the ring, `get_many` returns the items before it, and once the writer goes
/// on another process gets the whole item (before, the batch parked it in its own process).
#[test]
fn a_batch_stops_before_a_streamed_item_and_leaves_it_to_others() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("batch-stream")
        .capacity_bytes(4096)
        .create()
        .unwrap();
    q.put(vec![1]).unwrap();
    q.put(vec![2]).unwrap();
    let mut writer = process::fork(|| {
        q.put(vec![3; 64 << 10]).unwrap();
        0
    })
    .unwrap();
    // The writer has started its item (the ring is full) when it is stopped.
    assert!(eventually(LONG, || {
        mpqueue::observe::list().unwrap()[0]
            .snapshot()
            .unwrap()
            .puts
            == 3
    }));
    writer.kill(libc::SIGSTOP).unwrap();
    assert_eq!(q.get_many(10).unwrap(), [vec![1], vec![2]]);
    writer.kill(libc::SIGCONT).unwrap();
    let other = process::fork(|| {
        let item = q.get_timeout(LONG).unwrap();
        i32::from(item != vec![3; 64 << 10])
    })
    .unwrap();
    assert_eq!(
        other.join().unwrap(),
        0,
        "another process gets the streamed item"
    );
    assert_eq!(writer.join_timeout(LONG).unwrap(), Some(0));
}
