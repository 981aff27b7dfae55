//! `vmaspace bench`: every operation for every N as a JSON row (the kernel's time beside the
//! model's where the kernel side can run), the model's bytes per VMA, and the SVG plot.

mod common;

use std::process::Command;

#[test]
fn bench_rows_and_plot() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("plot.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_vmaspace"))
        .args(["bench", "--vmas", "20,300", "--rounds", "1", "--format", "json", "--plot"])
        .arg(&svg)
        .args(["--replay", "../../tests/recordings/ls.trace"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let kernel = common::kernel_usable();
    if !kernel {
        eprintln!("!!!!!!!! SKIPPED the kernel half of the bench test: needs root on Linux 6.18.x !!!!!!!!");
    }
    for n in [20u64, 300] {
        let of_n: Vec<&serde_json::Value> = rows.iter().filter(|r| r["vmas"].as_u64() == Some(n)).collect();
        let ops: Vec<&str> = of_n.iter().map(|r| r["op"].as_str().unwrap()).collect();
        assert_eq!(
            ops,
            ["mmap_munmap_pair", "mprotect_pair", "mremap_move", "maps_line", "fork", "placement", "bytes_per_vma"]
        );
        for r in &of_n[..6] {
            assert!(r["model_ns"].as_f64().unwrap() > 0.0, "{r}");
            assert_eq!(r["kernel_ns"].as_f64().is_some_and(|k| k > 0.0), kernel, "{r}");
        }
        // A Vma is more than a start and an end.
        assert!(of_n[6]["model_bytes"].as_f64().unwrap() > 16.0, "{}", of_n[6]);
    }
    // The replay's row: every call of the recording, timed on the model only.
    let replay = rows.last().unwrap();
    assert_eq!(replay["op"], "replay", "{replay}");
    let calls = std::fs::read_to_string("../../tests/recordings/ls.trace")
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(replay["calls"].as_u64(), Some(calls as u64), "{replay}");
    assert!(replay["model_ns"].as_f64().unwrap() > 0.0 && replay["kernel_ns"].is_null(), "{replay}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg"));
    // One line per operation for the model, and one per operation for the kernel.
    assert_eq!(plot.matches("<polyline").count(), if kernel { 12 } else { 6 }, "{plot}");
    std::fs::remove_dir_all(&dir).unwrap();
}
