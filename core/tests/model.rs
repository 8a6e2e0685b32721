//! Property test: any sequence of put/get/close operations spread over threads matches a
//! model FIFO queue (operations run one at a time, each on its assigned thread).

mod common;
use common::*;
use mpqueue::{GetError, PutError, Queue};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Put(u16),
    PutNowait(u16),
    Get,
    GetNowait,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u16>().prop_map(Op::Put),
        2 => any::<u16>().prop_map(Op::PutNowait),
        3 => Just(Op::Get),
        2 => Just(Op::GetNowait),
        1 => Just(Op::Close),
    ]
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    Got(u16),
    Full,
    Empty,
    Closed,
}

fn apply(q: &Queue<u16>, op: &Op) -> Outcome {
    let put = |r: Result<(), PutError<u16>>| match r {
        Ok(()) => Outcome::Ok,
        Err(PutError::Full(_)) => Outcome::Full,
        Err(PutError::Closed(_)) => Outcome::Closed,
        Err(e) => panic!("{e}"),
    };
    let get = |r: Result<u16, GetError>| match r {
        Ok(v) => Outcome::Got(v),
        Err(GetError::Empty) => Outcome::Empty,
        Err(GetError::Closed) => Outcome::Closed,
        Err(e) => panic!("{e}"),
    };
    match *op {
        // Blocking calls get a short timeout: the model knows when they would block.
        Op::Put(v) => put(q.put_timeout(v, Duration::from_millis(5))),
        Op::PutNowait(v) => put(q.put_nowait(v)),
        Op::Get => get(q.get_timeout(Duration::from_millis(5))),
        Op::GetNowait => get(q.get_nowait()),
        Op::Close => {
            q.close();
            Outcome::Ok
        }
    }
}

fn model(m: &mut VecDeque<u16>, closed: &mut bool, maxsize: usize, op: &Op) -> Outcome {
    match *op {
        _ if *closed && !matches!(op, Op::Close) => Outcome::Closed,
        Op::Put(v) | Op::PutNowait(v) => {
            if maxsize > 0 && m.len() >= maxsize {
                Outcome::Full
            } else {
                m.push_back(v);
                Outcome::Ok
            }
        }
        Op::Get | Op::GetNowait => m.pop_front().map_or(Outcome::Empty, Outcome::Got),
        Op::Close => {
            *closed = true;
            Outcome::Ok
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ops_on_three_threads_match_a_fifo_model(maxsize in 0usize..4, ops in proptest::collection::vec((0usize..3, op()), 1..60)) {
        setup();
        let _w = watchdog(Duration::from_secs(120));
        let q: Queue<u16> = Queue::new(maxsize).unwrap();
        // Three worker threads; the test hands each op to its thread and waits for the result.
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Op>();
                let (rtx, rrx) = mpsc::channel::<Outcome>();
                let q = q.clone();
                let h = std::thread::spawn(move || {
                    for op in rx {
                        rtx.send(apply(&q, &op)).unwrap();
                    }
                });
                (tx, rrx, h)
            })
            .collect();
        let mut m = VecDeque::new();
        let mut closed = false;
        for (t, op) in &ops {
            let expected = model(&mut m, &mut closed, maxsize, op);
            workers[*t].0.send(op.clone()).unwrap();
            let got = workers[*t].1.recv().unwrap();
            prop_assert_eq!(&got, &expected, "op {:?} on thread {}", op, t);
            prop_assert_eq!(q.qsize(), m.len());
            prop_assert_eq!(q.full(), maxsize > 0 && m.len() >= maxsize);
        }
        for (tx, _, h) in workers {
            drop(tx);
            h.join().unwrap();
        }
    }
}
