//! The `vm.max_map_count` boundary, checked against the live kernel with a small limit. The
//! test changes a global setting: it holds a lock so that no other such test runs at the same
//! time, and restores the setting even when it fails.

use std::fs::File;
use std::process::Command;

const SYSCTL: &str = "/proc/sys/vm/max_map_count";

/// Restores a sysctl when dropped (also while unwinding from a failed assertion).
struct Restore {
    path: &'static str,
    old: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(self.path, &self.old) {
            eprintln!("!!!!! could not restore {} to {}: {e} !!!!!", self.path, self.old.trim());
        }
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
    let lock = File::create("/tmp/vmaspace-global-settings.lock").unwrap();
    lock.lock().unwrap();
    let _restore = Restore { path: SYSCTL, old: std::fs::read_to_string(SYSCTL).unwrap() };
    std::fs::write(SYSCTL, "40").unwrap();
    let dir = std::env::temp_dir().join(format!("vmaspace-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("max_map_count.trace");
    std::fs::write(&path, trace()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vmaspace")).args(["check", "--every-step"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The trace did reach the limit: record what the kernel said and look for ENOMEM.
    let rec = Command::new(env!("CARGO_BIN_EXE_vmaspace")).arg("record").arg(&path).output().unwrap();
    assert!(rec.status.success());
    let recorded = std::fs::read_to_string(&path).unwrap();
    assert!(recorded.matches("ENOMEM").count() >= 3, "{recorded}");
    std::fs::remove_dir_all(&dir).unwrap();
}
