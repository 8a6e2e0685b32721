//! A Rust program and a Python program on the same named queues, for raw bytes: it gets
//! items from queue IN and puts each back reversed on queue OUT, until an empty item. The
//! Python side makes the queues with `mpqueue.Queue(name=..., items="bytes")`: each item is
//! one `mpqueue::Bytes` on the wire in both languages (`python/README.md`, "Sharing a queue
//! with Rust").
//!
//! `cargo run -p mpqueue-examples --example bytes_peer -- IN OUT`

use anyhow::Context;
use mpqueue::{Bytes, Queue};
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        anyhow::bail!("usage: bytes_peer IN OUT (two named queues)");
    };
    let input: Queue<Bytes> = Queue::open(input).with_context(|| format!("opening {input}"))?;
    let output: Queue<Bytes> = Queue::open(output).with_context(|| format!("opening {output}"))?;
    let put = |b: Vec<u8>| {
        output
            .put(Bytes::from(b))
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    put(b"ready from Rust".to_vec())?;
    loop {
        let item = input.get_timeout(Duration::from_secs(60))?;
        if item.is_empty() {
            break;
        }
        let mut back = item.to_vec();
        back.reverse();
        put(back)?;
    }
    output.close();
    output.join_thread()?;
    Ok(())
}
