//! Fuzzing the stats-segment parser that observers run on untrusted files: random words,
//! random truncations and random mutations of a real segment (`tests/corpus/valid.stats`)
//! never panic, hang or read out of bounds (the parser reads through bounds-checked `get`).

use mpqueue::observe::parse;
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
    assert!(!s.alive, "its creator has long exited");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_words_never_panic(raw in proptest::collection::vec(any::<u64>(), 0..700)) {
        let w: Vec<AtomicU64> = raw.into_iter().map(AtomicU64::new).collect();
        let _ = parse(&w, Path::new("x"), "x");
    }

    #[test]
    fn truncations_are_errors(words_kept in 0usize..VALID.len() / 8) {
        // Files whose length is not a multiple of 8 are refused before parsing.
        prop_assert!(parse(&words(&VALID[..words_kept * 8]), Path::new("x"), "x").is_err());
    }

    #[test]
    fn mutations_never_panic(edits in proptest::collection::vec((0usize..VALID.len(), any::<u8>()), 1..16)) {
        let mut bytes = VALID.to_vec();
        for (at, v) in edits {
            bytes[at] = v;
        }
        if let Ok(s) = parse(&words(&bytes), Path::new("x"), "x") {
            prop_assert!(s.processes.len() <= 2);
            prop_assert!(s.name.len() <= 128);
        }
    }
}
