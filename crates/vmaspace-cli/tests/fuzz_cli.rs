//! `vmaspace fuzz`: `--shard I/N` splits a campaign without overlap, `--keep` writes cases that
//! `vmaspace run` takes as they are, and the summary counts this shard's cases.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

mod common;
use common::kernel_usable;

#[test]
fn shards_partition_a_campaign_and_kept_cases_run() {
    if !kernel_usable() {
        eprintln!("\n!!!!! SKIPPED fuzz shard test: needs root on Linux 6.18.x !!!!!\n");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut seen = BTreeSet::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let out = dir.join(shard.replace('/', "-"));
        let o = Command::new(env!("CARGO_BIN_EXE_vmaspace"))
            .args(["fuzz", "--seed", "77", "--cases", "8", "--ops", "15", "--keep", "--shard", shard, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let cases: Vec<usize> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| {
                let n = e.ok()?.file_name().to_string_lossy().into_owned();
                n.strip_prefix("case-77-")?.strip_suffix(".trace")?.parse().ok()
            })
            .collect();
        assert!(stdout.contains(&format!("fuzz: {} case", cases.len())), "{stdout}");
        for c in &cases {
            assert!(seen.insert(*c), "case {c} ran in two shards");
            let trace = out.join(format!("case-77-{c}.trace"));
            let run =
                Command::new(env!("CARGO_BIN_EXE_vmaspace")).args(["run", "--quiet"]).arg(&trace).output().unwrap();
            assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
        }
    }
    assert_eq!(seen, (0..8).collect(), "the shards together ran every case once");

    // --format json: the totals (and any finding) as JSON objects on stdout.
    let o = Command::new(env!("CARGO_BIN_EXE_vmaspace"))
        .args(["fuzz", "--seed", "78", "--cases", "6", "--ops", "15", "--format", "json", "--out"])
        .arg(dir.join("json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(o.stdout).unwrap();
    let objects: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect();
    let totals = objects.last().expect("a totals object");
    assert_eq!(totals["cases"].as_u64(), Some(6), "{stdout}");
    assert_eq!(totals["calls"].as_u64(), Some(90), "{stdout}");
    assert_eq!(totals["seed"].as_u64(), Some(78), "{stdout}");
    let findings = totals["divergences"].as_u64().unwrap() as usize;
    assert_eq!(objects.len(), findings + 1, "one object per finding: {stdout}");
    assert_eq!(o.status.code(), Some(if findings == 0 { 0 } else { 1 }));
    let _ = std::fs::remove_dir_all(&dir);
}
