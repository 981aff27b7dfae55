//! The parser on hostile input: arbitrary bytes, and the bundled scenarios mutated byte by byte
//! and line by line. It must return (a trace or an error naming a line and column) without a
//! panic, in bounded time, whatever it is given.

use proptest::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};
use vmaspace_trace::parse_trace;

fn scenario_texts() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    out.sort();
    out
}

/// A mutation of a text: flip, insert or delete bytes, duplicate or drop lines.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    DuplicateLine(usize, usize),
    DropLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..2000).prop_map(|(i, n)| Mutation::DuplicateLine(i, n)),
        any::<usize>().prop_map(Mutation::DropLine),
    ]
}

fn apply(text: &str, m: &Mutation) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match m {
        Mutation::Flip(i, x) if !b.is_empty() => {
            let k = at(*i, b.len());
            b[k] ^= x | 1;
        }
        Mutation::Insert(i, bytes) => {
            let k = at(*i, b.len() + 1);
            b.splice(k..k, bytes.iter().copied());
        }
        Mutation::Delete(i, n) if !b.is_empty() => {
            let k = at(*i, b.len());
            b.drain(k..(k + n).min(b.len()));
        }
        Mutation::DuplicateLine(i, n) => {
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let l = lines[at(*i, lines.len())];
                b.extend(format!("{l}\n").repeat(*n).into_bytes());
            }
        }
        Mutation::DropLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let k = at(*i, lines.len());
                lines.remove(k);
            }
            b = (lines.join("\n") + "\n").into_bytes();
        }
        _ => {}
    }
    b
}

fn parse_bounded(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let start = Instant::now();
    if let Err(e) = parse_trace(&text) {
        assert!(e.line >= 1 && e.column >= 1, "an error without a position: {e}");
    }
    assert!(start.elapsed() < Duration::from_secs(2), "parsing took {:?}", start.elapsed());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_bounded(&bytes);
    }

    #[test]
    fn mutated_scenarios(pick in any::<usize>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let texts = scenario_texts();
        let mut text = texts[pick % texts.len()].clone();
        for m in &muts {
            text = String::from_utf8_lossy(&apply(&text, m)).into_owned();
        }
        parse_bounded(text.as_bytes());
    }
}

#[test]
fn deep_and_long_inputs() {
    for text in [
        format!("clone({}1) = 1001\n", "a=".repeat(100_000)),
        format!("mmap({}) = 0\n", "1|".repeat(100_000) + "1"),
        format!("openat(AT_FDCWD, \"{}\", O_RDONLY) = 3\n", "\\\\".repeat(100_000)),
        "(".repeat(100_000),
        format!("{}\n", "maps()\n".repeat(200_000)),
    ] {
        parse_bounded(text.as_bytes());
    }
}
