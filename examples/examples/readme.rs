//! The example of README.md, kept compiling and running.

use mpqueue::{JoinableQueue, Queue, process};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A worker pool: jobs in a JoinableQueue (anonymous, maxsize 100; 0 = unbounded).
    let jobs: JoinableQueue<Option<String>> = JoinableQueue::new(100)?;
    let lengths: Queue<usize> = Queue::new(0)?;
    let workers = (0..4)
        .map(|_| {
            process::fork(|| {
                // a child process sharing both queues
                while let Ok(Some(text)) = jobs.get() {
                    lengths.put(text.len()).unwrap();
                    jobs.task_done().unwrap();
                }
                jobs.task_done().unwrap(); // the None that stopped it
                0 // exit code; the child flushes its queues
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for word in ["hello", "multi", "process", "queue"] {
        jobs.put(Some(word.to_string()))?;
    }
    jobs.join(); // every job is done (and its result put)
    let mut got: Vec<usize> = (0..4).map(|_| lengths.get()).collect::<Result<_, _>>()?;
    got.sort();
    assert_eq!(got, [5, 5, 5, 7]);
    jobs.put_many(vec![None; 4])?; // stop the workers
    for w in workers {
        assert_eq!(w.join()?, 0);
    }

    let named = Queue::<u64>::builder().name("jobs").maxsize(10).create()?; // other programs:
    named.put(7)?; // Queue::<u64>::open("jobs")?
    for q in mpqueue::observe::list()? {
        // what mpqueue-top reads
        let s = q.snapshot()?;
        let (size, oldest, health) = (s.size, s.oldest_age, s.health());
        println!("{} size={size} oldest={oldest:?} health={health}", s.name);
    }
    Ok(())
}
