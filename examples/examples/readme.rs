//! The example of README.md, kept compiling and running.

use mpqueue::{Queue, process};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let jobs: Queue<String> = Queue::new(100)?; // anonymous, maxsize 100 (0 = unbounded)
    let done: Queue<usize> = Queue::new(0)?;
    let worker = process::fork(|| {
        // a child process sharing both queues
        while let Ok(text) = jobs.get() {
            if text.is_empty() {
                break;
            }
            done.put(text.len()).unwrap();
        }
        0 // exit code; the child flushes its queues
    })?;
    jobs.put("hello".to_string())?;
    jobs.put(String::new())?; // stop
    assert_eq!(done.get_timeout(Duration::from_secs(5))?, 5);
    assert_eq!(worker.join()?, 0);

    let named = Queue::<u64>::builder().name("jobs").maxsize(10).create()?; // other programs:
    named.put(7)?; // Queue::<u64>::open("jobs")?
    for q in mpqueue::observe::list()? {
        // what mpqueue-top reads
        let s = q.snapshot()?;
        println!("{} size={} puts={} gets={}", s.name, s.size, s.puts, s.gets);
    }
    Ok(())
}
