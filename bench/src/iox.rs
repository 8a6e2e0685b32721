//! iceoryx2 (zero-copy publish-subscribe over shared memory) in ping-pong: the lower bound
//! for a round trip between two processes. It has no blocking receive: each side polls
//! `receive` in a loop, so it is a bound, not a like-for-like peer.

use crate::shared::Placement;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

type Payload = [u8; 64];

/// One side's node and ports: it sends on `tx_name` and receives on `rx_name`.
struct Side {
    // Field order is drop order: the ports go before the node they belong to.
    tx: Publisher<ipc::Service, Payload, ()>,
    rx: Subscriber<ipc::Service, Payload, ()>,
    _node: Node<ipc::Service>,
}

/// The prefix of iceoryx2's files in `/dev/shm` for this benchmark.
const PREFIX: &str = "mpqueue_bench_iox2_";

/// Where iceoryx2 keeps its node and service files: under the workspace's `target/`
/// (its default is `/tmp/iceoryx2`). Its shared-memory segments go to `/dev/shm`, named
/// with [`PREFIX`]; [`remove_leftovers`] removes those it keeps after its nodes are gone.
fn config() -> anyhow::Result<Config> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/iceoryx2/");
    std::fs::create_dir_all(dir)?;
    let bad = |e| anyhow::anyhow!("iceoryx2 config: {e:?}");
    let mut config = Config::default();
    config
        .global
        .set_root_path(&Path::new(dir.as_bytes()).map_err(bad)?);
    config.global.prefix = FileName::new(PREFIX.as_bytes()).map_err(bad)?;
    Ok(config)
}

/// Removes what iceoryx2 leaves in `/dev/shm` once every node of the run is dropped (its
/// global management segment outlives them).
fn remove_leftovers() -> anyhow::Result<()> {
    for entry in std::fs::read_dir("/dev/shm")? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(PREFIX) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

impl Side {
    fn new(run: &str, tx_name: &str, rx_name: &str) -> anyhow::Result<Self> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new()
            .config(&config()?)
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .map_err(|e| anyhow::anyhow!("iceoryx2 node: {e:?}"))?;
        let service = |name: &str| {
            let name = format!("mpqueue-bench/{run}/{name}");
            node.service_builder(&name.as_str().try_into()?)
                .publish_subscribe::<Payload>()
                .open_or_create()
                .map_err(|e| anyhow::anyhow!("iceoryx2 service {name}: {e:?}"))
        };
        let tx = service(tx_name)?
            .publisher_builder()
            .create()
            .map_err(|e| anyhow::anyhow!("iceoryx2 publisher: {e:?}"))?;
        let rx = service(rx_name)?
            .subscriber_builder()
            .create()
            .map_err(|e| anyhow::anyhow!("iceoryx2 subscriber: {e:?}"))?;
        Ok(Side {
            tx,
            rx,
            _node: node,
        })
    }

    /// Sends one payload, again until a subscriber has it (the other side may not have
    /// connected yet: iceoryx2 drops a sample nobody subscribes to).
    fn send(&self) -> anyhow::Result<()> {
        while self
            .tx
            .send_copy([7; 64])
            .map_err(|e| anyhow::anyhow!("iceoryx2 send: {e:?}"))?
            == 0
        {
            std::thread::yield_now();
        }
        Ok(())
    }

    /// Busy-polls `receive` until a payload comes; after many empty polls it yields the
    /// CPU, so that the other side can run when both share one. Gives up after 10 s (the
    /// other side died).
    fn receive(&self) -> anyhow::Result<()> {
        let since = std::time::Instant::now();
        let mut polls = 0u32;
        loop {
            let sample = self
                .rx
                .receive()
                .map_err(|e| anyhow::anyhow!("iceoryx2 receive: {e:?}"))?;
            if let Some(sample) = sample {
                anyhow::ensure!(sample.payload()[0] == 7, "iceoryx2 payload changed");
                return Ok(());
            }
            polls += 1;
            if polls.is_multiple_of(1024) {
                anyhow::ensure!(
                    since.elapsed().as_secs() < 10,
                    "iceoryx2: no answer in 10 s"
                );
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Round trips over two publish-subscribe services: (median µs, p99 µs).
pub fn pingpong(n: usize, place: Placement) -> anyhow::Result<(f64, f64)> {
    let run = format!("{}-{}", std::process::id(), crate::shared::now_ns());
    let mut me: Option<Side> = None;
    let rtt = crate::shared::pingpong(
        n,
        place,
        &|rounds| {
            let echo = Side::new(&run, "pong", "ping").expect("iceoryx2 echo side");
            for _ in 0..rounds {
                echo.receive().expect("iceoryx2 ping");
                echo.send().expect("iceoryx2 pong");
            }
        },
        &mut || {
            let side = match &mut me {
                Some(side) => side,
                none => none.insert(Side::new(&run, "ping", "pong")?),
            };
            side.send()?;
            side.receive()
        },
    );
    drop(me);
    remove_leftovers()?;
    rtt
}
