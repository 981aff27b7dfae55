//! The `vm.max_map_count` boundary, checked against the live kernel with a small limit. The
//! test changes a global setting the way the oracle does: under the global-settings lock held
//! exclusively (handed to the `vmaspace` it starts), journaled before the change, so that it is
//! restored when the test ends, also when it fails, and by the next run if the test is killed.

use std::path::Path;
use std::process::Command;
use vmaspace_oracle::safety::{restore_settings, set_setting, settings_lock};

const SYSCTL: &str = "/proc/sys/vm/max_map_count";

/// Restores every journaled setting when dropped (also while unwinding from a failed assertion).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore_settings();
    }
}

fn usable() -> Result<(), String> {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if !r.starts_with("6.18.") {
        return Err(format!("the kernel is {}, not Linux 6.18.x", r.trim()));
    }
    std::fs::OpenOptions::new().write(true).open(SYSCTL).map_err(|e| format!("cannot write {SYSCTL}: {e}"))?;
    Ok(())
}

/// The trace: single pages with gaps between them until mmap fails, then splits and merges at
/// the limit. The executor starts with 8 VMAs.
fn trace() -> String {
    let mut t = String::from("# whole-space\n");
    let a = 0x1000_0000_0000u64;
    t.push_str(&format!("mmap({a:#x}, 0x3000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"));
    for i in 1..40u64 {
        let prot = if i % 2 == 0 { "PROT_READ" } else { "PROT_READ|PROT_WRITE" };
        t.push_str(&format!(
            "mmap({:#x}, 0x1000, {prot}, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n",
            a + i * 0x10000
        ));
    }
    // At the limit: a split is refused, a middle mprotect does one split and fails, unmapping
    // whole VMAs and mapping into a merge still work.
    t.push_str(&format!("munmap({:#x}, 0x1000)\n", a + 0x1000));
    t.push_str(&format!("mprotect({:#x}, 0x1000, PROT_READ)\n", a + 0x1000));
    t.push_str(&format!("munmap({:#x}, 0x1000)\n", a + 0x10000));
    t.push_str(&format!("munmap({:#x}, 0x1000)\n", a + 0x20000));
    t.push_str(&format!("mprotect({:#x}, 0x1000, PROT_READ)\n", a + 0x1000));
    t.push_str(&format!("munmap({:#x}, 0x1000)\n", a));
    t.push_str(&format!(
        "mmap({:#x}, 0x1000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n",
        a + 0x11000
    ));
    t.push_str(&format!("mmap({:#x}, 0x1000, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n", a + 0x30000));
    t.push_str("maps()\n");
    t
}

#[test]
fn max_map_count_boundary_matches_the_kernel() {
    if let Err(why) = usable() {
        eprintln!("\n!!!!! SKIPPED max_map_count test: {why} !!!!!\n");
        return;
    }
    let mut lock = settings_lock(true).unwrap();
    let _restore = Restore;
    set_setting(Path::new(SYSCTL), &std::fs::read_to_string(SYSCTL).unwrap(), "40").unwrap();
    let dir = std::env::temp_dir().join(format!("vmaspace-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("max_map_count.trace");
    std::fs::write(&path, trace()).unwrap();
    let mut check = Command::new(env!("CARGO_BIN_EXE_vmaspace"));
    lock.hand_to(&mut check).unwrap();
    let out = check.args(["check", "--every-step"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The trace did reach the limit: record what the kernel said and look for ENOMEM.
    let mut record = Command::new(env!("CARGO_BIN_EXE_vmaspace"));
    lock.hand_to(&mut record).unwrap();
    let rec = record.arg("record").arg(&path).output().unwrap();
    assert!(rec.status.success());
    let recorded = std::fs::read_to_string(&path).unwrap();
    assert!(recorded.matches("ENOMEM").count() >= 3, "{recorded}");
    std::fs::remove_dir_all(&dir).unwrap();
}
