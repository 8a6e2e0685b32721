//! Fuzzing the stats-segment parser that observers run on untrusted files: random segments
//! behind a valid header, random truncations and random mutations of a real segment
//! (`tests/corpus/valid.stats`) never panic, hang or read out of bounds (the parser reads
//! through bounds-checked `get`), both as live words and as the copies observers read from
//! the file.

use mpqueue::layout_info::{SLOT_LEN, STATS_HEADER_LEN};
use mpqueue::observe::{Liveness, parse, parse_bytes};
use proptest::prelude::*;
use std::path::Path;
use std::sync::atomic::AtomicU64;

const VALID: &[u8] = include_bytes!("corpus/valid.stats");

fn words(bytes: &[u8]) -> Vec<AtomicU64> {
    bytes
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            AtomicU64::new(u64::from_le_bytes(w))
        })
        .collect()
}

/// A stats segment whose header is valid and whose every other word is random.
#[derive(Debug)]
struct RandomSegment {
    words: Vec<u64>,
    name_len: usize,
    /// Slots whose state is not FREE.
    in_use: usize,
    /// Every slot is FREE, or RESERVED or ACTIVE with a valid pid: only the counters are
    /// random, and they cannot make the segment unreadable.
    readable: bool,
}

/// Random words behind the corpus segment's magic, version and header and slot lengths,
/// with a matching slot count (1 to 4) and total length, an ASCII name of a legal length
/// and an even retirement sequence (an odd one only makes the parse retry for 5 ms). Most
/// slots get a state and a pid a queue writes (each decided on its own), so that parsing
/// goes through them.
fn segment_behind_a_valid_header() -> impl Strategy<Value = RandomSegment> {
    (1usize..=4)
        .prop_flat_map(|slots| {
            let len = (STATS_HEADER_LEN + (slots + 1) * SLOT_LEN) / 8;
            (
                proptest::collection::vec(any::<u64>(), len),
                0usize..=128,
                proptest::collection::vec(
                    (proptest::bool::weighted(0.8), proptest::bool::weighted(0.8)),
                    slots,
                ),
            )
        })
        .prop_map(|(mut words, name_len, sane)| {
            let slots = sane.len();
            let total = words.len() as u64 * 8;
            for (i, w) in words.iter_mut().take(3).enumerate() {
                *w = u64::from_le_bytes(VALID[8 * i..8 * i + 8].try_into().unwrap());
            }
            words[2] = total; // total_len
            words[3] = slots as u64 | (SLOT_LEN as u64) << 32; // slot_count, slot_len
            words[11] = name_len as u64;
            for w in &mut words[12..28] {
                *w &= 0x7f7f_7f7f_7f7f_7f7f; // the name: ASCII, so valid UTF-8
            }
            words[50] &= !1; // retire_seq (offset 400)
            let (mut in_use, mut readable) = (0, true);
            for (i, &(sane_state, sane_pid)) in sane.iter().enumerate() {
                let at = (STATS_HEADER_LEN + (i + 1) * SLOT_LEN) / 8;
                if sane_state {
                    words[at] %= 3; // FREE, RESERVED or ACTIVE
                }
                if sane_pid {
                    words[at + 1] %= 1 << 31;
                }
                let (state, pid) = (words[at], words[at + 1]);
                in_use += usize::from(state != 0);
                readable &= state == 0 || (state <= 2 && pid < 1 << 31);
            }
            RandomSegment {
                words,
                name_len,
                in_use,
                readable,
            }
        })
}

#[test]
fn the_corpus_segment_parses() {
    let s = parse(&words(VALID), Path::new("valid.stats"), "q.corpus").unwrap();
    assert_eq!(s.name, "corpus");
    assert!(s.named);
    assert_eq!((s.puts, s.gets, s.size, s.maxsize), (5, 2, 3, 8));
    assert_eq!(s.empty_events, 0);
    assert_eq!(s.processes.len(), 1);
    // Written by layout 1.0, which recorded no pid namespace: whether its creator lives
    // cannot be told, so it is not taken for dead (and the queue is not stale).
    assert_eq!(s.processes[0].liveness, Liveness::Unknown);
    assert!(s.alive);
    let mut copy = parse_bytes(VALID, Path::new("valid.stats"), "q.corpus").unwrap();
    copy.taken_ns = s.taken_ns;
    copy.processes[0].heartbeat_age = s.processes[0].heartbeat_age;
    assert_eq!(copy, s, "a copy parses as the live words do");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_segments_behind_a_valid_header_never_panic(seg in segment_behind_a_valid_header()) {
        let w: Vec<AtomicU64> = seg.words.iter().copied().map(AtomicU64::new).collect();
        let bytes: Vec<u8> = seg.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        for r in [parse(&w, Path::new("x"), "x"), parse_bytes(&bytes, Path::new("x"), "x")] {
            match r {
                Ok(s) => {
                    prop_assert_eq!(s.name.len(), seg.name_len);
                    prop_assert_eq!(s.processes.len(), seg.in_use);
                }
                // Past the header, only a slot's state or pid can make the segment unreadable:
                // whatever the counters hold, a segment with sane slots parses.
                Err(e) => prop_assert!(!seg.readable, "{}", e),
            }
        }
    }

    #[test]
    fn truncations_are_errors(bytes_kept in 0usize..VALID.len()) {
        let kept = &VALID[..bytes_kept];
        prop_assert!(parse_bytes(kept, Path::new("x"), "x").is_err());
        prop_assert!(parse(&words(&VALID[..bytes_kept / 8 * 8]), Path::new("x"), "x").is_err());
    }

    #[test]
    fn mutations_never_panic(edits in proptest::collection::vec((0usize..VALID.len(), any::<u8>()), 1..16)) {
        let mut bytes = VALID.to_vec();
        for (at, v) in edits {
            bytes[at] = v;
        }
        for s in [parse(&words(&bytes), Path::new("x"), "x"), parse_bytes(&bytes, Path::new("x"), "x")]
            .into_iter()
            .flatten()
        {
            prop_assert!(s.processes.len() <= 2);
            prop_assert!(s.name.len() <= 128);
        }
    }
}
