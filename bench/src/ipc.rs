//! ipc-channel (Servo's multi-process channels, one receiver) in the scenarios it supports.

use crate::items::{B64, Big, Item, Msg};
use crate::shared::{Placement, timed_run};
use ipc_channel::ipc;

/// Items moved per second from one sender process to one receiver process.
fn stream<T: Item>(n: u64) -> anyhow::Result<f64> {
    let (tx, rx) = ipc::channel::<Msg<T>>()?;
    let (secs, got) = timed_run(
        1,
        1,
        Placement::Free,
        &|_| {
            for _ in 0..n {
                tx.send(Msg::Item(T::make())).unwrap();
            }
            tx.send(Msg::Stop).unwrap();
        },
        &|_| {
            let mut got = 0;
            while let Msg::Item(_) = rx.recv().unwrap() {
                got += 1;
            }
            got
        },
    )?;
    anyhow::ensure!(got == n);
    Ok(n as f64 / secs)
}

/// Items per second of 64-byte items.
pub fn tput(n: u64) -> anyhow::Result<f64> {
    stream::<B64>(n)
}

/// MB/s of 1 MiB items.
pub fn big(n: u64) -> anyhow::Result<f64> {
    Ok(stream::<Big>(n)? * (1u64 << 20) as f64 / 1e6)
}

/// Round trips over two channels: (median µs, p99 µs).
pub fn pingpong(n: usize, place: Placement) -> anyhow::Result<(f64, f64)> {
    let (ping_tx, ping_rx) = ipc::channel::<B64>()?;
    let (pong_tx, pong_rx) = ipc::channel::<B64>()?;
    crate::shared::pingpong(
        n,
        place,
        &|rounds| {
            for _ in 0..rounds {
                pong_tx.send(ping_rx.recv().unwrap()).unwrap();
            }
        },
        &mut || {
            ping_tx.send(B64::make())?;
            pong_rx.recv()?;
            Ok(())
        },
    )
}
