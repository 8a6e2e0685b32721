//! Turning a checked copy of a stats segment into a [`Snapshot`]: summing the slots in an
//! order that keeps `gets <= puts`, and looking up each process's liveness.

use super::snapshot::*;
use crate::error::Error;
use crate::header::{Copied, Live, Shape, View, corrupt, validate};
use crate::layout::{Histogram, ProcSlot, SLOT_LEN, STATS_HEADER_LEN, StatsHeader, slot_state};
use crate::segment::{FLAG_JOINABLE, FLAG_NAMED};
use crate::sys::{self, Liveness};
use crate::tasks::TaskCounts;
use crate::timeline::{self, Points};
use std::mem::offset_of;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// One attached process as read, before its liveness is looked up.
struct RawProcess {
    pid: u32,
    start_time: u64,
    pid_ns: u64,
    role: u64,
    heartbeat_ns: u64,
    last_put_ns: u64,
    last_get_ns: u64,
    buffered_since_ns: u64,
    buffered_items: u64,
    buffered_bytes: u64,
    puts: u64,
    gets: u64,
    full_events: u64,
    empty_events: u64,
}

/// The counters as read, before liveness and clocks.
pub(super) struct Raw {
    gets: u64,
    size: u64,
    lost: u64,
    puts: u64,
    sums: [u64; 11],
    consumed: u64,
    /// Slot 0's `reserving`: capacity units of dead processes, counted in `dropped`.
    returned: u64,
    put_blocked: HistogramSnapshot,
    get_blocked: HistogramSnapshot,
    wait: HistogramSnapshot,
    /// Number (in put order) of the oldest item still queued.
    head: u64,
    points: Points,
    /// Latest `last_put_ns` and `last_get_ns` of any slot, slot 0 included.
    last_put_ns: u64,
    last_get_ns: u64,
    processes: Vec<RawProcess>,
    flags: u64,
    maxsize: u64,
    lock_recoveries: u64,
    frames_discarded: u64,
    created_by: u64,
    created_unix_ns: u64,
    ring_capacity: u64,
}

/// Per-slot counters summed into [`Raw::sums`], in this order.
const SUMMED: [usize; 11] = [
    offset_of!(ProcSlot, bytes_put),
    offset_of!(ProcSlot, bytes_got),
    offset_of!(ProcSlot, full_events),
    offset_of!(ProcSlot, empty_events),
    offset_of!(ProcSlot, put_timeouts),
    offset_of!(ProcSlot, get_timeouts),
    offset_of!(ProcSlot, decode_errors),
    offset_of!(ProcSlot, puts),
    offset_of!(ProcSlot, tasks_done),
    offset_of!(ProcSlot, tasks_abandoned),
    offset_of!(ProcSlot, dropped),
];

fn slot_base(i: usize) -> usize {
    STATS_HEADER_LEN + i * SLOT_LEN
}

fn hist(v: &impl View, base: usize) -> HistogramSnapshot {
    HistogramSnapshot {
        count: v.at(base + offset_of!(Histogram, count)),
        sum_ns: v.at(base + offset_of!(Histogram, sum_ns)),
        buckets: std::array::from_fn(|b| v.at(base + offset_of!(Histogram, buckets) + 8 * b)),
    }
}

/// The process in slot `i` (1..=slots) of `v`, if the slot is in use.
fn read_process(v: &impl View, i: usize, path: &Path) -> Result<Option<RawProcess>, Error> {
    let sf = |off: usize| v.at(slot_base(i) + off);
    match sf(offset_of!(ProcSlot, state)) {
        slot_state::FREE => return Ok(None),
        slot_state::RESERVED | slot_state::ACTIVE => {}
        other => return Err(corrupt(path, format!("slot {i} has unknown state {other}"))),
    }
    let pid = sf(offset_of!(ProcSlot, pid));
    let pid = u32::try_from(pid)
        .ok()
        .filter(|&p| p <= i32::MAX as u32)
        .ok_or_else(|| corrupt(path, format!("slot {i} has an invalid pid {pid}")))?;
    let puts = sf(offset_of!(ProcSlot, puts));
    let buffered_items = puts
        .saturating_sub(sf(offset_of!(ProcSlot, committed)))
        .saturating_sub(sf(offset_of!(ProcSlot, dropped)));
    let buffered_bytes = sf(offset_of!(ProcSlot, bytes_put))
        .saturating_sub(sf(offset_of!(ProcSlot, committed_bytes)))
        .saturating_sub(sf(offset_of!(ProcSlot, dropped_bytes)));
    Ok(Some(RawProcess {
        pid,
        start_time: sf(offset_of!(ProcSlot, start_time)),
        pid_ns: sf(offset_of!(ProcSlot, pid_ns)),
        role: sf(offset_of!(ProcSlot, role)),
        heartbeat_ns: sf(offset_of!(ProcSlot, heartbeat_ns)),
        last_put_ns: sf(offset_of!(ProcSlot, last_put_ns)),
        last_get_ns: sf(offset_of!(ProcSlot, last_get_ns)),
        buffered_since_ns: if buffered_items == 0 {
            0
        } else {
            sf(offset_of!(ProcSlot, buffered_since_ns))
        },
        buffered_items,
        buffered_bytes: if buffered_items == 0 {
            0
        } else {
            buffered_bytes
        },
        puts,
        gets: sf(offset_of!(ProcSlot, gets)),
        full_events: sf(offset_of!(ProcSlot, full_events)),
        empty_events: sf(offset_of!(ProcSlot, empty_events)),
    }))
}

/// Reads the counters: `gets` and the puts for `size` from `early`, then everything else
/// from `late`. For a live segment both are the same view and the loads happen in this
/// order. Every get is counted after its item's put, so `gets` read before `puts` keeps
/// `gets <= puts`; `size` is the puts read before `consumed` and `lost`, so it never
/// overshoots what the queue held (capacity bounds it); it can only come out low, and not
/// below zero.
pub(super) fn read_raw(
    early: &impl View,
    late: &impl View,
    shape: &Shape,
    path: &Path,
) -> Result<Raw, Error> {
    let slots = shape.slots;
    let early_sum = |off: usize| {
        (0..=slots)
            .map(|i| early.at(slot_base(i) + off))
            .fold(0, u64::wrapping_add)
    };
    let gets = early_sum(offset_of!(ProcSlot, gets));
    let early_puts = early_sum(offset_of!(ProcSlot, puts));
    let consumed = late.at(offset_of!(StatsHeader, consumed));
    let lost = late.at(offset_of!(StatsHeader, lost));
    let sf = |i: usize, off: usize| late.at(slot_base(i) + off);
    let mut sums = [0u64; 11];
    let [mut put_blocked, mut get_blocked, mut wait]: [HistogramSnapshot; 3] = Default::default();
    let (mut last_put_ns, mut last_get_ns) = (0, 0);
    let mut processes = Vec::new();
    for i in 0..=slots {
        for (sum, off) in sums.iter_mut().zip(SUMMED) {
            *sum = sum.wrapping_add(sf(i, off));
        }
        for (h, off) in [
            (&mut put_blocked, offset_of!(ProcSlot, put_blocked)),
            (&mut get_blocked, offset_of!(ProcSlot, get_blocked)),
            (&mut wait, offset_of!(ProcSlot, wait)),
        ] {
            h.add(&hist(late, slot_base(i) + off));
        }
        last_put_ns = last_put_ns.max(sf(i, offset_of!(ProcSlot, last_put_ns)));
        last_get_ns = last_get_ns.max(sf(i, offset_of!(ProcSlot, last_get_ns)));
        if i == 0 {
            continue;
        }
        if let Some(p) = read_process(late, i, path)? {
            processes.push(p);
        }
    }
    let timeline = offset_of!(StatsHeader, timeline);
    let points = std::array::from_fn(|k| {
        let at = timeline + 16 * k;
        (late.at(at), late.at(at + 8))
    });
    Ok(Raw {
        gets,
        size: early_puts.saturating_sub(consumed).saturating_sub(lost),
        head: consumed.saturating_add(lost),
        lost,
        puts: sums[7],
        sums,
        consumed,
        returned: late.at(slot_base(0) + offset_of!(ProcSlot, reserving)),
        put_blocked,
        get_blocked,
        wait,
        points,
        last_put_ns,
        last_get_ns,
        processes,
        flags: late.at(offset_of!(StatsHeader, flags)),
        maxsize: late.at(offset_of!(StatsHeader, maxsize)),
        lock_recoveries: late.at(offset_of!(StatsHeader, lock_recoveries)),
        frames_discarded: late.at(offset_of!(StatsHeader, frames_discarded)),
        created_by: late.at(offset_of!(StatsHeader, creator_pid)),
        created_unix_ns: late.at(offset_of!(StatsHeader, created_unix_ns)),
        ring_capacity: late.at(offset_of!(StatsHeader, ring_capacity)),
    })
}

/// The time from `at_ns` (monotonic; 0 = never) to `now`.
fn age(now: u64, at_ns: u64) -> Option<Duration> {
    (at_ns != 0).then(|| Duration::from_nanos(now.saturating_sub(at_ns)))
}

/// The age of the oldest item: from the put timeline, or from a feeder buffer holding an
/// older one (items of one process can wait behind another's).
fn oldest_age(raw: &Raw, now: u64) -> Option<Duration> {
    if raw.size == 0 {
        return None;
    }
    let queued = timeline::head_put_time(&raw.points, raw.head).map(|t| match t {
        timeline::PutTime::AtOrAfter(at) | timeline::PutTime::Before(at) => at,
    });
    let buffered = raw.processes.iter().map(|p| p.buffered_since_ns);
    queued
        .into_iter()
        .chain(buffered)
        .filter(|&at| at != 0)
        .min()
        .and_then(|at| age(now, at))
}

/// The snapshot of what was read: each process's liveness is looked up now, once.
pub(super) fn finish(raw: Raw, shape: Shape, id: &str) -> Snapshot {
    let now = sys::mono_now();
    let oldest_age = oldest_age(&raw, now);
    let processes: Vec<ProcessSnapshot> = raw
        .processes
        .into_iter()
        .map(|p| {
            let liveness = sys::liveness(p.pid, p.start_time, p.pid_ns);
            ProcessSnapshot {
                pid: p.pid,
                start_time: p.start_time,
                alive: liveness != Liveness::Dead,
                liveness,
                role: Role::from_bits(p.role),
                heartbeat_age: age(now, p.heartbeat_ns.max(p.last_put_ns).max(p.last_get_ns))
                    .filter(|_| p.role != 0),
                last_put_age: age(now, p.last_put_ns),
                last_get_age: age(now, p.last_get_ns),
                buffered_age: age(now, p.buffered_since_ns),
                buffered_items: p.buffered_items,
                buffered_bytes: p.buffered_bytes,
                puts: p.puts,
                gets: p.gets,
                full_events: p.full_events,
                empty_events: p.empty_events,
            }
        })
        .collect();
    let [
        bytes_put,
        bytes_got,
        full_events,
        empty_events,
        put_timeouts,
        get_timeouts,
        decode_errors,
        _,
        tasks_done,
        tasks_abandoned,
        dropped,
    ] = raw.sums;
    let tasks = TaskCounts {
        puts: raw.puts,
        gets: raw.gets,
        dropped,
        returned: raw.returned,
        done: tasks_done,
        abandoned: tasks_abandoned,
    };
    Snapshot {
        name: shape.name,
        id: id.to_string(),
        named: raw.flags & FLAG_NAMED != 0,
        maxsize: raw.maxsize,
        size: raw.size,
        puts: raw.puts,
        gets: raw.gets,
        left: raw.head,
        bytes_put,
        bytes_got,
        full_events,
        empty_events,
        put_timeouts,
        get_timeouts,
        decode_errors,
        lost: raw.lost,
        lock_recoveries: raw.lock_recoveries,
        frames_discarded: raw.frames_discarded,
        put_blocked: raw.put_blocked,
        get_blocked: raw.get_blocked,
        wait: raw.wait,
        oldest_age,
        last_get_age: age(now, raw.last_get_ns),
        last_put_age: age(now, raw.last_put_ns),
        unfinished: (raw.flags & FLAG_JOINABLE != 0).then(|| tasks.unfinished(raw.consumed)),
        tasks_abandoned,
        buffered_items: processes
            .iter()
            .fold(0, |n, p| n.saturating_add(p.buffered_items)),
        alive: processes.iter().any(|p| p.alive),
        processes,
        created_by: raw.created_by as u32,
        created_unix_ns: raw.created_unix_ns,
        ring_capacity: raw.ring_capacity,
        taken_ns: now,
    }
}

/// Parses a stats segment given as live words (a mapping of this process's own queue);
/// never reads outside `words`. Public for fuzzing and for the `metrics` feature.
#[doc(hidden)]
pub fn parse(words: &[AtomicU64], path: &Path, id: &str) -> Result<Snapshot, Error> {
    let v = Live(words);
    let shape = validate(&v, words.len() * 8, path)?;
    // Seqlock: retry while a retirement moves counters between slots (bounded in time).
    let idle = AtomicU64::new(0);
    let seq = words
        .get(offset_of!(StatsHeader, retire_seq) / 8)
        .unwrap_or(&idle);
    let raw = crate::sync::read_consistent(seq, || read_raw(&v, &v, &shape, path))?;
    Ok(finish(raw, shape, id))
}

/// Parses a copy of a stats segment, as observers read it from its file; never reads
/// outside `bytes`. Public for fuzzing.
#[doc(hidden)]
pub fn parse_bytes(bytes: &[u8], path: &Path, id: &str) -> Result<Snapshot, Error> {
    let v = Copied(bytes);
    let shape = validate(&v, bytes.len(), path)?;
    let raw = read_raw(&v, &v, &shape, path)?;
    Ok(finish(raw, shape, id))
}
