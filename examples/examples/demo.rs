//! Producers → bounded `jobs` queue → workers → `results` queue → the parent, all in
//! separate processes; prints a summary and checks that every job came back once.
//!
//! `cargo run --release -p mpqueue-examples --example demo -- [producers] [workers] [jobs]`

use mpqueue::{Queue, observe, process};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Serialize, Deserialize)]
enum Job {
    Work {
        producer: u32,
        seq: u32,
        text: String,
    },
    Stop,
}

#[derive(Serialize, Deserialize)]
struct Done {
    producer: u32,
    seq: u32,
    words: u32,
    worker: u32,
}

fn main() -> anyhow::Result<()> {
    let arg = |i: usize, default: u32| -> u32 {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (producers, workers, per_producer) = (arg(1, 3), arg(2, 4), arg(3, 50_000));
    let jobs: Queue<Job> = Queue::builder().label("demo-jobs").maxsize(1000).create()?;
    let results: Queue<Done> = Queue::builder().label("demo-results").create()?;
    let start = Instant::now();

    let mut children = Vec::new();
    for worker in 0..workers {
        children.push(process::fork(|| {
            while let Ok(Job::Work {
                producer,
                seq,
                text,
            }) = jobs.get()
            {
                let words = text.split_whitespace().count() as u32;
                results
                    .put(Done {
                        producer,
                        seq,
                        words,
                        worker,
                    })
                    .unwrap();
            }
            0
        })?);
    }
    for producer in 0..producers {
        children.push(process::fork(|| {
            for seq in 0..per_producer {
                let text = format!("job {seq} from producer {producer} with a few words");
                jobs.put(Job::Work {
                    producer,
                    seq,
                    text,
                })
                .unwrap();
            }
            0
        })?);
    }

    let total = (producers * per_producer) as usize;
    let mut seen = vec![false; total];
    let mut per_worker = vec![0u64; workers as usize];
    let mut words = 0u64;
    for _ in 0..total {
        let d = results.get_timeout(Duration::from_secs(60))?;
        let i = (d.producer * per_producer + d.seq) as usize;
        anyhow::ensure!(!seen[i], "job {i} arrived twice");
        seen[i] = true;
        per_worker[d.worker as usize] += 1;
        words += u64::from(d.words);
    }
    let secs = start.elapsed().as_secs_f64();
    for _ in 0..workers {
        jobs.put(Job::Stop).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for c in children {
        anyhow::ensure!(c.join()? == 0, "a child failed");
    }

    let stats = observe::list()?
        .iter()
        .filter_map(|q| q.snapshot().ok())
        .find(|s| s.name == "demo-jobs");
    println!(
        "mpqueue demo: {producers} producers -> jobs (maxsize 1000) -> {workers} workers -> results"
    );
    println!(
        "jobs done:    {total} in {secs:.2} s ({:.0} jobs/s), {words} words counted",
        total as f64 / secs
    );
    println!("per worker:   {per_worker:?}");
    if let Some(s) = stats {
        println!(
            "jobs queue:   puts {} gets {} full events {} empty events {} p99 put blocked {:?}",
            s.puts,
            s.gets,
            s.full_events,
            s.empty_events,
            s.put_blocked.quantile(0.99).unwrap_or_default()
        );
    }
    println!("all {total} jobs came back exactly once");
    Ok(())
}
