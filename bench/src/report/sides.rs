//! "Each side alone": what a put and a get cost in one warm process, and how much of it is
//! bincode.

use super::Sizes;
use crate::mpq;
use std::fmt::Write as _;

/// Writes the section (or why its figures are missing).
pub fn write(md: &mut String, n: Sizes) -> anyhow::Result<()> {
    eprintln!("each side alone");
    writeln!(md, "\n## Each side alone (1→1 64 B: where the time goes)\n")?;
    let q = n.quick;
    match (
        mpq::sides(if q { 50 } else { 2000 }),
        mpq::codec(if q { 100_000 } else { 5_000_000 }),
    ) {
        (Ok((put, get)), Ok((enc, dec))) => {
            writeln!(
                md,
                "- one process, warm, no other process: `put` {put:.0} ns, `get` {get:.0} ns per 64 B item (so one consumer cannot take more than {:.1}M items/s)\n- of which bincode alone, with mpqueue's options: encode {enc:.0} ns, decode {dec:.0} ns",
                1e3 / get
            )?;
        }
        (Err(e), _) | (_, Err(e)) => writeln!(md, "n/a ({e})")?,
    }
    Ok(())
}
