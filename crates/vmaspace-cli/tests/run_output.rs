//! What `vmaspace run` shows: every call with the model's result as strace prints it (errno
//! names and text), checkpoints under a label naming their line and process, `--quiet` for the
//! checkpoints alone, `--format json`, and `--expect` against a recorded `.expected`. And `run`
//! starts as the process `check` runs traces in, so a first hint-less mmap lands where the
//! kernel puts it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn vmaspace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmaspace"))
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("run-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TRACE: &str = "mmap(0x100000000000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n\
                     munmap(0x100000000001, 4096)\n\
                     maps()\n\
                     fork() = 1001\n\
                     [pid 1001] maps()\n";

#[test]
fn calls_results_and_labelled_checkpoints() {
    let p = write("calls.trace", TRACE);
    let out = vmaspace().arg("run").arg(&p).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "mmap(0x100000000000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000000"
    );
    assert_eq!(lines[1], "munmap(0x100000000001, 4096) = -1 EINVAL (Invalid argument)");
    assert_eq!(lines[2], "--- maps() at line 3 ---");
    assert_eq!(lines[3], "100000000000-100000002000 rw-p 00000000 00:00 0 ");
    assert_eq!(lines[4], "fork() = 1001");
    assert_eq!(lines[5], "--- maps() at line 5 [pid 1001] ---");
    // --quiet: the checkpoints' text alone.
    let quiet = vmaspace().args(["run", "--quiet"]).arg(&p).output().unwrap();
    assert_eq!(String::from_utf8(quiet.stdout).unwrap(), format!("{}\n{}\n", lines[3], lines[6]));
}

#[test]
fn json_has_one_object_a_line() {
    let p = write("json.trace", TRACE);
    let out = vmaspace().args(["run", "--format", "json"]).arg(&p).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(
        lines[1].contains(r#""line": 2"#) && lines[1].contains(r#""result": "-1 EINVAL (Invalid argument)""#),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(r#""checkpoint": "maps""#)
            && lines[2].contains(r#""text": "100000000000-100000002000 rw-p 00000000 00:00 0 \n""#),
        "{}",
        lines[2]
    );
    assert!(lines[4].contains(r#""pid": 1001"#), "{}", lines[4]);
    for l in lines {
        assert!(l.starts_with('{') && l.ends_with('}'), "{l}");
    }
}

#[test]
fn expect_compares_with_a_recording() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let trace = scenarios.join("anon_merge_adjacent.trace");
    let ok = vmaspace()
        .args(["run", "--quiet", "--expect"])
        .arg(trace.with_extension("expected"))
        .arg(&trace)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stderr).contains("agree with"));
    let wrong = write("wrong.expected", "100000000000-100000001000 r--p 00000000 00:00 0 \n");
    let bad = vmaspace().args(["run", "--quiet", "--expect"]).arg(&wrong).arg(&trace).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("the checkpoints differ"));
}

#[test]
fn run_starts_where_check_does() {
    // A hint-less mmap lands below the executor's vDSO, as on the kernel; --empty starts from
    // nothing instead.
    let p = write("first.trace", "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n");
    let out = vmaspace().arg("run").arg(&p).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().ends_with("= 0x7ffff7ff5000"), "{text}");
    let empty = vmaspace().args(["run", "--empty"]).arg(&p).output().unwrap();
    let text = String::from_utf8(empty.stdout).unwrap();
    assert!(text.lines().next().unwrap().ends_with("= 0x7ffff7ffd000"), "{text}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !release.starts_with("6.18.") || !root {
        eprintln!("\n!!!!! SKIPPED: `check` of the first hint-less mmap needs root on Linux 6.18.x !!!!!\n");
        return;
    }
    let out = vmaspace().arg("check").arg(&p).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The built-in layout is the executor's on this kernel (its maps before the first call).
    let probe = write("probe.trace", "# whole-space\nmaps()\n");
    let rec = vmaspace().arg("record").arg(&probe).output().unwrap();
    assert!(rec.status.success(), "{}", String::from_utf8_lossy(&rec.stderr));
    let fresh = std::fs::read_to_string(probe.with_extension("initial-maps")).unwrap();
    let builtin = include_str!("../src/executor-layout.maps");
    assert!(vmaspace_trace::maps::compare(&fresh, builtin).is_none(), "the built-in layout is stale:\n{fresh}");
}

/// `-` reads the trace from standard input; several traces run one after another, each under a
/// `==> NAME <==` line, and the exit status is the worst of them.
#[test]
fn stdin_and_several_traces() {
    use std::io::Write;
    let mut child = vmaspace()
        .args(["run", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(TRACE.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let from_stdin = String::from_utf8(out.stdout).unwrap();
    let p = write("several.trace", TRACE);
    let direct = vmaspace().arg("run").arg(&p).output().unwrap();
    assert_eq!(from_stdin, String::from_utf8(direct.stdout).unwrap());

    let bad = write("bad.trace", "mmapp(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n");
    let out = vmaspace().arg("run").arg(&p).arg(&bad).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("==> ").count(), 3, "{text}");
    assert_eq!(text.matches("--- maps() at line 3 ---").count(), 2, "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("did you mean `mmap`?"), "{err}");

    // An empty trace is reported, not run (it would agree with anything).
    let empty = write("empty.trace", "# nothing\n");
    let out = vmaspace().arg("run").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("an empty trace"));
}
