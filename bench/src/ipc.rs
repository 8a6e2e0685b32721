//! ipc-channel (Servo's multi-process channels, one receiver) in the scenarios it supports.

use crate::items::{B64, Big, Item, Msg};
use crate::shared::{Placement, now_ns, pin, timed_run};
use ipc_channel::ipc;

/// Items per second, one sender process to one receiver process.
pub fn tput(n: u64, place: Placement) -> anyhow::Result<f64> {
    let (tx, rx) = ipc::channel::<Msg<B64>>()?;
    let (secs, got) = timed_run(
        1,
        1,
        place,
        &|_| {
            for _ in 0..n {
                tx.send(Msg::Item(B64::make())).unwrap();
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

/// MB/s of 1 MiB items.
pub fn big(n: u64) -> anyhow::Result<f64> {
    let (tx, rx) = ipc::channel::<Msg<Big>>()?;
    let (secs, got) = timed_run(
        1,
        1,
        Placement::Free,
        &|_| {
            for _ in 0..n {
                tx.send(Msg::Item(Big::make())).unwrap();
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
    Ok(n as f64 * (1u64 << 20) as f64 / secs / 1e6)
}

/// Round trips over two channels: (median µs, p99 µs).
pub fn pingpong(n: usize, place: Placement) -> anyhow::Result<(f64, f64)> {
    let (ping_tx, ping_rx) = ipc::channel::<B64>()?;
    let (pong_tx, pong_rx) = ipc::channel::<B64>()?;
    let child = mpqueue::process::fork(|| {
        if let Some(cpu) = place.cpu(true) {
            pin(cpu);
        }
        for _ in 0..n + 1000 {
            let v = ping_rx.recv().unwrap();
            pong_tx.send(v).unwrap();
        }
        0
    })?;
    if let Some(cpu) = place.cpu(false) {
        pin(cpu);
    }
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n + 1000 {
        let t = now_ns();
        ping_tx.send(B64::make())?;
        pong_rx.recv()?;
        if i >= 1000 {
            rtts.push(now_ns() - t);
        }
    }
    crate::unpin_all();
    anyhow::ensure!(child.join()? == 0);
    Ok(crate::percentiles(&mut rtts))
}
