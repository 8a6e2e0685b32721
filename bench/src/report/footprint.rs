//! What a queue costs besides time: the memory section, and the observers section (the
//! exporter's scrape time and the dashboard's CPU over a fleet of live queues).

use super::Sizes;
use crate::{mpq, observers};
use std::fmt::Write as _;

/// Shared memory per queue, resident memory per queue and per attached process.
pub fn memory(md: &mut String) -> anyhow::Result<()> {
    eprintln!("memory and observers");
    let (declared, touched, per_proc) = mpq::memory()?;
    writeln!(md, "\n## Memory\n")?;
    writeln!(
        md,
        "- per queue, shared memory as created (data segment with the default 1 MiB ring + stats segment with 64 process slots; a named queue's files are allocated in full at creation, so a full /dev/shm fails early; an anonymous queue's too, once a process attaches): {} bytes",
        declared
    )?;
    writeln!(
        md,
        "- per queue, resident after 100 puts and gets of 64 B in one process (shared and private; each process that attaches maps the data segment in advance, up to 64 MiB, so that no item waits for a page fault on the ring's first lap): {} bytes",
        touched
    )?;
    writeln!(
        md,
        "- per attached process per queue (its per-process state and feeder thread; the shared pages it maps are counted once, above), private resident: {} bytes",
        per_proc
    )?;
    Ok(())
}

/// `mpqueue-exporter` scrape times and `mpqueue-top` CPU over a fleet of live queues.
pub fn observers(md: &mut String, n: Sizes) -> anyhow::Result<()> {
    let q = n.quick;
    let (queues, procs) = if q { (20, 2) } else { (100, 8) };
    let fleet = observers::Fleet::start(queues, procs)?;
    let scrapes = observers::scrapes(&fleet.dir, if q { 5 } else { 50 });
    let top = observers::top_cpu(&fleet.dir, if q { 3 } else { 20 });
    drop(fleet);
    writeln!(
        md,
        "\n## Observers ({queues} live queues, {procs} processes attached to each besides the creator)\n"
    )?;
    match &scrapes {
        Ok(v) => {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            writeln!(
                md,
                "- `mpqueue-exporter` scrape (HTTP round trip, {} scrapes): median {:.1} ms, max {:.1} ms",
                v.len(),
                v[v.len() / 2],
                v[v.len() - 1]
            )?;
        }
        Err(e) => writeln!(md, "- `mpqueue-exporter` scrape: n/a ({e})")?,
    }
    match &top {
        Ok(pct) => writeln!(
            md,
            "- `mpqueue-top` at the default 1 s interval: {pct:.2}% of one core"
        )?,
        Err(e) => writeln!(md, "- `mpqueue-top`: n/a ({e})")?,
    }
    Ok(())
}
