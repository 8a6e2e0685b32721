//! A separate program (exec'd, not forked) that uses named queues, for the end-to-end tests:
//!
//! - `mpq-helper put NAME N` — puts 0..N (u64) and flushes
//! - `mpq-helper get NAME N` — gets N items and prints their sum
//! - `mpq-helper hold NAME`  — attaches and waits until killed
//! - `mpq-helper open NAME`  — opens the queue and prints the error if it cannot
//! - `mpq-helper observe`    — prints one line per queue: its name and snapshot or error
//! - `mpq-helper plant NAME` — creates the queue, puts 1, makes its files mode 0666, prints
//!   `ready` and waits until killed (a hostile neighbour's queue)
//! - `mpq-helper anon`       — creates an anonymous queue and prints the error if it cannot
//! - `mpq-helper open-or-create NAME` — likewise with `open_or_create`
//! - `mpq-helper stall`      — puts more than the ring holds into a queue nobody reads, and
//!   exits: the exit flush gives up after 200 ms and drops the rest

use mpqueue::Queue;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Prints `ok`, or the error and exits with 3.
fn report(r: Result<(), mpqueue::Error>) {
    match r {
        Ok(()) => println!("ok"),
        Err(e) => {
            println!("{e}");
            std::process::exit(3);
        }
    }
}

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
        (Some("open"), Some(name)) => {
            if let Err(e) = Queue::<u64>::open(name) {
                println!("{e}");
                std::process::exit(3);
            }
            println!("opened");
        }
        (Some("plant"), Some(name)) => plant(name)?,
        (Some("anon"), _) => report(Queue::<u64>::new(0).map(drop)),
        (Some("stall"), _) => stall()?,
        (Some("open-or-create"), Some(name)) => report(
            Queue::<u64>::builder()
                .name(name)
                .open_or_create(true)
                .create()
                .map(drop),
        ),
        (Some("observe"), _) => {
            for q in mpqueue::observe::list()? {
                match q.snapshot() {
                    Ok(s) => println!("{} ok puts={}", q.name(), s.puts),
                    Err(e) => println!("{} error: {e}", q.name()),
                }
            }
        }
        _ => anyhow::bail!(
            "usage: mpq-helper put|get NAME N | hold|open|plant|open-or-create NAME | anon | stall | observe"
        ),
    }
    Ok(())
}

/// A hostile neighbour's queue: created, fed one item, its files made 0666; waits until
/// killed.
fn plant(name: &str) -> anyhow::Result<()> {
    let q: Queue<u64> = Queue::builder().name(name).create()?;
    q.put(1).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = mpqueue::queue_dir();
    for ext in ["data", "stats"] {
        let path = dir.join(format!("q.{name}.{ext}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    }
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// More than the ring holds, put into a queue nobody reads: the flush gives up and says so
/// in its return value only.
fn stall() -> anyhow::Result<()> {
    let q: Queue<Vec<u8>> = Queue::builder()
        .capacity_bytes(4096)
        .flush_timeout(Some(Duration::from_millis(200)))
        .create()?;
    for _ in 0..10 {
        q.put(vec![1; 3000]).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    q.close();
    match q.join_thread() {
        Err(mpqueue::JoinError::Stalled { dropped }) => println!("dropped {dropped}"),
        other => anyhow::bail!("expected a stalled flush, got {other:?}"),
    }
    q.cancel_join_thread();
    for _ in 0..3 {
        q.put(vec![2; 3000]).ok(); // closed: refused, nothing printed either
    }
    Ok(())
}
