//! Every scenario under `tests/scenarios/` runs on the model through the `vmaspace` binary and
//! must reproduce the results and checkpoint text recorded from the live kernel. Where the
//! machine runs Linux 6.18, the scenarios are also re-checked against the kernel itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use vmaspace_trace::maps::{compare, filter_window};
use vmaspace_trace::{Scope, parse_trace};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("tests/scenarios exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    v.sort();
    v
}

fn vmaspace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmaspace"))
}

const CWD: &str = "/tmp/vmaspace-scenario-cwd";

fn scoped(text: &str, scope: Scope) -> String {
    match scope {
        Scope::Window { start, end } => filter_window(text, start, end),
        Scope::WholeSpace => text.to_string(),
    }
}

/// A one-file trace in its own temporary directory, removed when the test ends (also on failure).
struct TempTrace {
    dir: PathBuf,
    path: PathBuf,
}

impl TempTrace {
    fn new(name: &str, text: &str) -> TempTrace {
        let dir = std::env::temp_dir().join(format!("vmaspace-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.trace"));
        std::fs::write(&path, text).unwrap();
        TempTrace { dir, path }
    }
}

impl Drop for TempTrace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn there_are_at_least_thirty_scenarios() {
    assert!(scenarios().len() >= 30, "only {} scenarios", scenarios().len());
}

#[test]
fn every_scenario_matches_the_kernel_recording() {
    let mut failures = Vec::new();
    for path in scenarios() {
        let trace = parse_trace(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|e| panic!("{}: no recorded .expected: {e}", path.display()));
        // An empty recording (every VMA outside the window) would let any model agree.
        assert!(!expected.is_empty(), "{}: the recorded .expected is empty", path.display());
        let out = vmaspace().arg("run").arg("--quiet").arg(&path).args(["--cwd", CWD]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            failures.push(format!("{}: exit {:?}: {stderr}", path.display(), out.status.code()));
            continue;
        }
        let got = String::from_utf8(out.stdout).unwrap().replace(CWD, "@CWD@");
        let scope = trace.effective_scope();
        if let Some(report) = compare(&scoped(&expected, scope), &scoped(&got, scope)) {
            failures.push(format!("{}: {report}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{} scenario(s) differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_wrong_expectation_fails_run_with_status_1() {
    let t = TempTrace::new(
        "wrong",
        "mmap(0x100000000000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = 0x100000001000\n",
    );
    let out = vmaspace().arg("run").arg(&t.path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1") && err.contains("expected 0x100000001000, got 0x100000000000"), "{err}");
}

#[test]
fn malformed_trace_is_status_2_with_line_and_column() {
    let t =
        TempTrace::new("bad", "# fine\nmunmap(0x1000, 4096) = 0\nmmap(NULL, 4096, PROT_REED, MAP_PRIVATE, -1, 0)\n");
    let out = vmaspace().arg("run").arg(&t.path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3, column 18"), "{err}");
    assert!(out.stdout.is_empty());
}

/// Linux 6.18.x on x86_64: the machine can serve as the oracle.
fn kernel_is_618() -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    cfg!(target_arch = "x86_64") && r.starts_with("6.18.")
}

#[test]
fn scenarios_recheck_against_the_live_kernel() {
    if !kernel_is_618() {
        eprintln!("\n!!!!! SKIPPED: the kernel is not Linux 6.18.x; scenarios were NOT re-checked against it !!!!!\n");
        return;
    }
    // `vmaspace check` takes the global-settings lock itself (shared, or exclusive for traces
    // that set huge page pools), as every kernel run does.
    let out = vmaspace().arg("check").args(scenarios()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vmaspace check failed:\n{err}");
    let n = scenarios().len();
    let summary = err.lines().find(|l| l.starts_with("checked ")).unwrap_or_else(|| panic!("no summary:\n{err}"));
    let count = |what: &str| -> usize {
        let before = summary.split(&format!(" {what}")).next().unwrap_or_default();
        before.rsplit([' ', ',']).next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{summary}"))
    };
    let (agree, skipped) = (count("agree"), count("skipped"));
    assert_eq!((agree + skipped, count("diverge")), (n, 0), "{err}");
    if skipped > 0 {
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("SKIPPED")).collect();
        eprintln!(
            "\n!!!!! SKIPPED: {skipped} of {n} scenarios were NOT re-checked on this machine:\n{}\n",
            lines.join("\n")
        );
    }
}

#[test]
fn check_reports_a_trace_whose_expectation_the_kernel_contradicts() {
    if !kernel_is_618() {
        eprintln!("\n!!!!! SKIPPED: the kernel is not Linux 6.18.x; the oracle was NOT tested !!!!!\n");
        return;
    }
    // live-kernel.md: an unaligned MAP_FIXED address is EINVAL; the trace claims success.
    let t = TempTrace::new(
        "contradicted",
        "mmap(0x100000000001, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = 0x100000000001\n",
    );
    let out = vmaspace().arg("check").arg(&t.path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kernel returned -1 EINVAL"), "{err}");

    // The same with --format json, beside a trace that agrees and one that cannot be read:
    // one object a trace on stdout, then the totals.
    let good = scenarios_dir().join("anon_merge_adjacent.trace");
    let missing = scenarios_dir().join("no-such-trace.trace");
    let out = vmaspace().args(["check", "--format", "json"]).arg(&t.path).arg(&good).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let objects: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(objects.len(), 4, "{objects:?}");
    assert_eq!(objects[0]["verdict"], "diverge");
    assert!(objects[0]["message"].as_str().unwrap().contains("kernel returned -1 EINVAL"));
    assert_eq!(objects[1]["verdict"], "agree");
    assert_eq!(objects[1]["message"], serde_json::Value::Null);
    assert_eq!(objects[2]["verdict"], "unusable");
    assert_eq!(objects[2]["trace"], missing.display().to_string());
    let totals = &objects[3];
    assert_eq!((totals["traces"].as_u64(), totals["agree"].as_u64()), (Some(3), Some(1)));
    assert_eq!((totals["diverge"].as_u64(), totals["unusable"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn the_oracle_reports_what_live_kernel_md_measured() {
    if !kernel_is_618() {
        eprintln!("\n!!!!! SKIPPED: the kernel is not Linux 6.18.x; the oracle was NOT tested !!!!!\n");
        return;
    }
    // live-kernel.md §1: with ASLR off the first hint-less page lands at 0x7ffff7ff6000 in the
    // no-libc executor, and root can map page 0 with MAP_FIXED.
    let trace = parse_trace(
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n\
         mmap(0, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\nmaps()\n",
    )
    .unwrap();
    let run = vmaspace_oracle::run(&trace, &vmaspace_oracle::RunOptions::default()).unwrap();
    use vmaspace_trace::Outcome::Value;
    assert_eq!(run.results[0], Some(Value(0x7ffff7ff6000)));
    assert_eq!(run.results[1], Some(Value(0)));
    assert!(run.texts[2].as_deref().unwrap().starts_with("00000000-00001000 r--p"));
    assert!(run.initial_maps.contains("[vdso]") && run.initial_maps.contains("[vsyscall]"));
}
