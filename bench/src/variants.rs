//! mpqueue's other ways to move items: batches (`put_many`/`get_many`) and `JoinableQueue`
//! with a `task_done` per item. (Other item types go through `mpq::tput`.)

use crate::items::{Item, Msg};
use crate::shared::{Placement, timed_run};
use mpqueue::{JoinableQueue, Queue};

/// Items per second from `p` producers to `c` consumer processes, unpinned, counters on:
/// producers `put_many` batches of `batch` items, consumers `get_many(batch)`.
pub fn batched<T: Item>(p: usize, c: usize, n: u64, batch: usize) -> anyhow::Result<f64> {
    let q: Queue<Msg<T>> = Queue::new(0)?;
    let per = n / p as u64;
    let (secs, got) = timed_run(
        p,
        c,
        Placement::Free,
        &|_| {
            let mut left = per as usize;
            while left > 0 {
                let k = left.min(batch);
                q.put_many((0..k).map(|_| Msg::Item(T::make())).collect())
                    .unwrap();
                left -= k;
            }
            q.put_many((0..c).map(|_| Msg::Stop).collect()).unwrap();
        },
        &|_| {
            let (mut got, mut stops) = (0, 0);
            while stops < p {
                for m in q.get_many(batch).unwrap() {
                    match m {
                        Msg::Item(_) => got += 1,
                        Msg::Stop => stops += 1,
                    }
                }
            }
            // A batch can hold stop markers meant for another consumer: hand them back.
            for _ in p..stops {
                q.put(Msg::Stop).unwrap();
            }
            got
        },
    )?;
    anyhow::ensure!(
        got == per * p as u64,
        "received {got} of {}",
        per * p as u64
    );
    Ok(got as f64 / secs)
}

/// Items per second from `p` producers to `c` consumer processes through a
/// `JoinableQueue`, unpinned, counters on: consumers call `task_done` after every `get`
/// (the stop markers too), and every task is done when the run ends.
pub fn joinable<T: Item>(p: usize, c: usize, n: u64) -> anyhow::Result<f64> {
    let q: JoinableQueue<Msg<T>> = JoinableQueue::new(0)?;
    let per = n / p as u64;
    let (secs, got) = timed_run(
        p,
        c,
        Placement::Free,
        &|_| {
            for _ in 0..per {
                q.put(Msg::Item(T::make())).unwrap();
            }
            for _ in 0..c {
                q.put(Msg::Stop).unwrap();
            }
        },
        &|_| {
            let (mut got, mut stops) = (0, 0);
            while stops < p {
                let m = q.get().unwrap();
                q.task_done().unwrap();
                match m {
                    Msg::Item(_) => got += 1,
                    Msg::Stop => stops += 1,
                }
            }
            got
        },
    )?;
    anyhow::ensure!(
        got == per * p as u64,
        "received {got} of {}",
        per * p as u64
    );
    anyhow::ensure!(
        q.unfinished() == 0,
        "{} tasks not done after the run",
        q.unfinished()
    );
    Ok(got as f64 / secs)
}
