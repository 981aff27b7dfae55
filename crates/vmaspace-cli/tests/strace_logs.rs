//! strace logs as users have them: a real program traced with `strace -f -y -s 64`, read by
//! `vmaspace run`, which accepts every line of it and says plainly what the log cannot tell.

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
        || Command::new(tool).arg("-V").output().is_ok_and(|o| o.status.success())
}

/// The corpus's C program: fork, a thread, a shared file mapping, mseal.
fn program() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/cprog.c")).unwrap()
}

#[test]
fn run_reads_a_real_strace_log_and_says_what_it_lacks() {
    if !have("strace") || !have("gcc") {
        eprintln!("\n!!!!! SKIPPED strace log test: strace or gcc is missing !!!!!\n");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("strace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p.c"), program()).unwrap();
    let cc = Command::new("gcc").args(["-O1", "-o", "p", "p.c", "-lpthread"]).current_dir(&dir).status().unwrap();
    assert!(cc.success());
    let st =
        Command::new("strace").args(["-f", "-y", "-s", "64", "-o", "p.log", "./p"]).current_dir(&dir).status().unwrap();
    assert!(st.success());
    let log = std::fs::read_to_string(dir.join("p.log")).unwrap();
    // The log has what the import must handle: pid prefixes, -y annotations, a fork, a thread,
    // unfinished/resumed pairs, exit and signal lines, and mseal as strace 6.1 prints it.
    for needle in ["</", "+++ exited with 0 +++", "---", "CLONE_VM"] {
        assert!(log.contains(needle), "the log lacks {needle}:\n{log}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_vmaspace")).arg("run").arg(dir.join("p.log")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a strace log: "), "{err}");
    assert!(err.contains("line 1: execve: loads a new program image"), "{err}");
    assert!(err.contains("--initial-maps"), "{err}");
    assert!(!err.contains("column"), "a line of the log was not understood: {err}");
    // Every memory call of the program is among those the import kept.
    let calls: usize = err.split("a strace log: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let memory_lines =
        log.lines().filter(|l| l.contains(" mmap(") || l.contains(" munmap(") || l.contains(" mprotect(")).count();
    assert!(calls >= memory_lines, "{calls} calls kept, {memory_lines} memory calls in the log");
    let _ = std::fs::remove_dir_all(&dir);
}
