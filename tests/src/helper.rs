//! A separate program (exec'd, not forked) that uses named queues, for the end-to-end tests:
//!
//! - `mpq-helper put NAME N` — puts 0..N (u64) and flushes
//! - `mpq-helper get NAME N` — gets N items and prints their sum
//! - `mpq-helper hold NAME`  — attaches and waits until killed

use mpqueue::Queue;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> anyhow::Result<u64> {
        Ok(args
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("missing count"))?
            .parse()?)
    };
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("put"), Some(name)) => {
            let q: Queue<u64> = Queue::open(name)?;
            for i in 0..num(2)? {
                q.put(i).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            q.close();
            q.join_thread()?;
        }
        (Some("get"), Some(name)) => {
            let q: Queue<u64> = Queue::open(name)?;
            let mut sum = 0;
            for _ in 0..num(2)? {
                sum += q.get_timeout(Duration::from_secs(60))?;
            }
            println!("{sum}");
        }
        (Some("hold"), Some(name)) => {
            let q: Queue<u64> = Queue::open(name)?;
            q.put(1).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("attached");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        _ => anyhow::bail!("usage: mpq-helper put|get NAME N | hold NAME"),
    }
    Ok(())
}
