//! Quick 1->1 throughput probe (the full suite comes with the benchmark issue).
use mpqueue::{Queue, process};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let q: Queue<Vec<u8>> = Queue::new(0)?;
    let start = Instant::now();
    let child = process::fork({
        let q = q.clone();
        move || {
            let item = vec![7u8; 64];
            for _ in 0..n {
                q.put(item.clone()).unwrap();
            }
            0
        }
    })?;
    for _ in 0..n {
        let v = q.get()?;
        assert_eq!(v.len(), 64);
    }
    let secs = start.elapsed().as_secs_f64();
    child.join()?;
    println!("1->1 64B: {:.0} items/s", n as f64 / secs);
    Ok(())
}
