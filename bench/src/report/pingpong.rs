//! The ping-pong table: round trips between two processes over two channels, per
//! placement, median and p99, mpqueue against every peer and a raw pipe.

use super::{Sizes, Versus};
use crate::measure::Runner;
use crate::shared::Placement;
use crate::{ipc, limits, mpq, python};
use std::fmt::Write as _;

/// The median round trips of mpqueue and the raw pipe on the same CPU and across CPUs.
pub struct Medians {
    pub same: Versus,
    pub cross: Versus,
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
        "| placement | mpqueue | Python multiprocessing.Queue | faster-fifo | ipc-channel | raw pipe |\n|---|---|---|---|---|---|"
    )?;
    let mut medians = Medians {
        same: Versus::default(),
        cross: Versus::default(),
    };
    for place in [Placement::Same, Placement::Cross, Placement::Free] {
        let versus = row(md, r, n, place)?;
        match place {
            Placement::Same => medians.same = versus,
            Placement::Cross => medians.cross = versus,
            Placement::Free => {}
        }
    }
    Ok(medians)
}

/// Measures and writes one placement's row; returns the medians of mpqueue and the pipe.
fn row(md: &mut String, r: &Runner, n: Sizes, place: Placement) -> anyhow::Result<Versus> {
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
    ];
    let row: Vec<String> = cells
        .iter()
        .map(|(m, p)| format!("{} / {}", m.cell(), p.cell()))
        .collect();
    writeln!(md, "| {} | {} |", place.label(), row.join(" | "))?;
    Ok(Versus {
        mpqueue: cells[0].0.med(),
        pipe: cells[4].0.med(),
    })
}
