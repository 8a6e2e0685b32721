//! Fuzzing the stats-segment parser that observers run on untrusted files: random words,
//! random truncations and random mutations of a real segment (`tests/corpus/valid.stats`)
//! never panic, hang or read out of bounds (the parser reads through bounds-checked `get`),
//! both as live words and as the copies observers read from the file.

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
    fn random_words_never_panic(raw in proptest::collection::vec(any::<u64>(), 0..700)) {
        let w: Vec<AtomicU64> = raw.iter().copied().map(AtomicU64::new).collect();
        let _ = parse(&w, Path::new("x"), "x");
        let bytes: Vec<u8> = raw.iter().flat_map(|w| w.to_le_bytes()).collect();
        let _ = parse_bytes(&bytes, Path::new("x"), "x");
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
