//! The ping-pong table: round trips between two processes over two channels, per
//! placement, median and p99, mpqueue against every peer, a raw pipe and iceoryx2's
//! busy-polling lower bound; and the CPU an idle blocked `get` uses.

use super::{Sizes, Versus};
use crate::measure::Runner;
use crate::shared::Placement;
use crate::{iox, ipc, limits, mpq, python};
use std::fmt::Write as _;

/// The median round trips of mpqueue and the raw pipe on the same CPU and across CPUs,
/// the p99s of mpqueue and iceoryx2 across CPUs, and an idle `get`'s CPU use.
pub struct Medians {
    pub same: Versus,
    pub cross: Versus,
    pub cross_p99: Versus,
    pub idle_cpu: Option<f64>,
}

/// Measures and writes the table, one row per placement.
pub fn write(md: &mut String, r: &Runner, n: Sizes) -> anyhow::Result<Medians> {
    eprintln!("ping-pong");
    writeln!(
        md,
        "\n## Ping-pong round trip between two processes over two queues, µs (median / p99)\n"
    )?;
    writeln!(
        md,
        "| placement | mpqueue | Python multiprocessing.Queue | faster-fifo | ipc-channel | raw pipe | iceoryx2 (busy-polling bound) |\n|---|---|---|---|---|---|---|"
    )?;
    let mut medians = Medians {
        same: Versus::default(),
        cross: Versus::default(),
        cross_p99: Versus::default(),
        idle_cpu: None,
    };
    for place in [Placement::Same, Placement::Cross, Placement::Free] {
        let (versus, p99) = row(md, r, n, place)?;
        match place {
            Placement::Same => medians.same = versus,
            Placement::Cross => (medians.cross, medians.cross_p99) = (versus, p99),
            Placement::Free => {}
        }
    }
    writeln!(
        md,
        "\niceoryx2 0.10 is zero-copy publish-subscribe of `[u8; 64]` with no blocking receive: each side polls `receive` in a loop (yielding the CPU after 1024 empty polls, so that a peer on the same CPU gets to run), so it is a lower bound, not a like-for-like peer. mpqueue's `get` spins briefly, yields, then sleeps on a futex; every process that attaches to a queue maps its ring in advance, so no item waits for a page fault on the ring's first lap."
    )?;
    let idle = mpq::idle_get_cpu();
    if let Ok(share) = &idle {
        writeln!(
            md,
            "\nAn idle `get` blocked for 1 s on an empty queue used {:.3}% of a CPU (thread CPU time over wall time).",
            share * 100.0
        )?;
    }
    medians.idle_cpu = idle.ok();
    Ok(medians)
}

/// Measures and writes one placement's row; returns the medians of mpqueue and the pipe,
/// and the p99s of mpqueue and iceoryx2 (in `Versus`' `pipe`).
fn row(
    md: &mut String,
    r: &Runner,
    n: Sizes,
    place: Placement,
) -> anyhow::Result<(Versus, Versus)> {
    eprintln!(" {}", place.label());
    let n_rtt = n.rtt;
    let pin = match place {
        Placement::Same => vec!["--pin".to_string(), "same".into()],
        Placement::Cross => vec!["--pin".into(), "cross".into()],
        Placement::Free => vec![],
    };
    let pyargs = |peer: &str| {
        let mut a = vec!["pingpong".to_string(), (n_rtt as u64 / 4).to_string()];
        a.extend(pin.clone());
        let v = python::run(peer, &a)?;
        anyhow::ensure!(v.len() == 2, "bad pybench output");
        Ok((v[0], v[1]))
    };
    let cells = [
        r.pair("mpqueue", || mpq::pingpong(n_rtt, place)),
        r.pair("mp.Queue", || pyargs("mpq")),
        r.pair("faster-fifo", || pyargs("ff")),
        r.pair("ipc-channel", || ipc::pingpong(n_rtt, place)),
        r.pair("raw pipe", || limits::pipe_pingpong(n_rtt, place)),
        r.pair("iceoryx2", || iox::pingpong(n_rtt, place)),
    ];
    let row: Vec<String> = cells
        .iter()
        .map(|(m, p)| format!("{} / {}", m.cell(), p.cell()))
        .collect();
    writeln!(md, "| {} | {} |", place.label(), row.join(" | "))?;
    let medians = Versus {
        mpqueue: cells[0].0.med(),
        pipe: cells[4].0.med(),
    };
    let p99s = Versus {
        mpqueue: cells[0].1.med(),
        pipe: cells[5].1.med(),
    };
    Ok((medians, p99s))
}
