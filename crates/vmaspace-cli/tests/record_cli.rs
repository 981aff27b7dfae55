//! `vmaspace record` writes the kernel's results into the user's trace without respelling it
//! (flag order, `0` for NULL, comments stay), and `record --check` reports a changed result as
//! a unified diff.

use std::path::Path;
use std::process::Command;

mod common;
use common::kernel_usable;

fn vmaspace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmaspace"))
}

#[test]
fn record_keeps_spelling_and_check_prints_a_unified_diff() {
    if !kernel_usable() {
        eprintln!("\n!!!!! SKIPPED record spelling test: needs root on Linux 6.18.x !!!!!\n");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("record-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("spelling.trace");
    let call = "mmap(0x100000000000, 4096, PROT_WRITE|PROT_READ, MAP_FIXED|MAP_ANONYMOUS|MAP_PRIVATE, -1, 0)";
    std::fs::write(&p, format!("# mine\n{call}   # a comment\nmunmap(0x1, 4096)\nmaps()\n")).unwrap();
    let out = vmaspace().arg("record").arg(&p).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(&format!("{call} = 0x100000000000  # a comment\n")), "{text}");
    assert!(text.contains("munmap(0x1, 4096) = -1 EINVAL\n"), "{text}");

    // A wrong result: one hunk, the old line removed before the new one added.
    std::fs::write(&p, text.replace("= -1 EINVAL", "= 0")).unwrap();
    let out = vmaspace().args(["record", "--check"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let diff: Vec<&str> = err.lines().skip_while(|l| !l.starts_with("@@")).collect();
    assert_eq!(diff[0], "@@ -1,4 +1,4 @@", "{err}");
    let minus = diff.iter().position(|l| *l == "-munmap(0x1, 4096) = 0").expect("removed line");
    let plus = diff.iter().position(|l| *l == "+munmap(0x1, 4096) = -1 EINVAL").expect("added line");
    assert!(minus < plus, "{err}");
    assert_eq!(diff.iter().filter(|l| l.starts_with('-') || l.starts_with('+')).count(), 2, "{err}");
}
