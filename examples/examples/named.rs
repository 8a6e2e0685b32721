//! Two unrelated processes on one named queue: run `named serve` in one terminal and
//! `named send hello world` in another.

use mpqueue::Queue;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let q: Queue<String> = Queue::builder()
                .name("example-named")
                .open_or_create(true)
                .create()?;
            println!("waiting on queue {:?} (Ctrl-C to stop)", q.name());
            loop {
                match q.get_timeout(Duration::from_secs(60)) {
                    Ok(msg) => println!("got: {msg}"),
                    Err(mpqueue::GetError::Empty) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Some("send") => {
            let q: Queue<String> = Queue::open("example-named")?;
            q.put(args[1..].join(" "))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            q.close();
            q.join_thread()?;
            Ok(())
        }
        _ => anyhow::bail!("usage: named serve | named send WORDS..."),
    }
}
